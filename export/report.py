"""reports/export.md from the manifest: one table per model, then the int8 attempts, in one screen."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from distill import atomic
from distill.commands import portable_command, portable_run, uses_placeholder
from distill.tables import per_type_table


def _mb(size: int | None) -> str:
    return "—" if size is None else f"{size / 1e6:.2f}"


def _num(value: float | None, fmt: str) -> str:
    return "—" if value is None else format(value, fmt)


def written_by(manifest: dict[str, Any]) -> str:
    """The export command, its run directory as RUN and its report directory as REPORT_DIR unless given
    relative (distill/commands.py)."""
    words = shlex.split(
        manifest.get("command") or f"python -m export.onnx --run-dir {shlex.quote(manifest['run'])}"
    )
    placeholders = {"RUN": manifest["run"]}
    for i, word in enumerate(words):
        if word == "--report-dir" and i + 1 < len(words):
            placeholders["REPORT_DIR"] = words[i + 1]
        elif word.startswith("--report-dir="):
            placeholders["REPORT_DIR"] = word.partition("=")[2]
    return portable_command(words, placeholders)


def placeholders_said(command: str) -> str:
    said = [
        note
        for name, note in (
            ("RUN", "RUN: the run directory below"),
            ("REPORT_DIR", "REPORT_DIR: where this report went"),
        )
        if uses_placeholder(command, name)
    ]
    return f"; {'; '.join(said)}." if said else "."


def render(manifest: dict[str, Any]) -> str:
    command = written_by(manifest)
    lines = [
        "# ONNX export",
        "",
        f"Written by `{command}`{placeholders_said(command)}",
        f"Run {portable_run(manifest['run'])}, exported {manifest['created']} on {manifest['machine']['cpu']} "
        f"({manifest['machine']['threads']} threads; int8 features: {', '.join(manifest['machine']['int8_features']) or 'none'}).",
        ", ".join(
            f"{name} {manifest['versions'][name]}"
            for name in ("onnxruntime", "optimum", "openvino", "nncf", "torch", "transformers")
            if name in manifest["versions"]
        )
        + ".",
        "",
        f"F1: entity F1 on {_scored(manifest['eval'])}, {manifest['eval']['words']} words, window-merged as in "
        "training; word agree: the share of those words whose label is PyTorch fp32's. Parity: logits against "
        f"PyTorch on up to {manifest['eval']['parity_windows']} evaluation windows. Latency: the median of "
        f"interleaved rounds over every CPU variant kept, on a batch of {manifest['eval']['batch_size']} evaluation "
        "windows on this CPU (the choice of the CPU variant is made on them; the bench measures properly). "
        f"Budget for int8 and OpenVINO: {manifest['int8_budget']} F1 points against PyTorch. Batch-sensitive: "
        "word labels that change when a window is predicted alone instead of in the export's batch, on the gate forms.",
        "",
    ]
    if manifest.get("models_missing"):
        lines += [
            f"**Not exported**: {', '.join(manifest['models_missing'])} — the run's config.toml and metrics.json "
            f"expect {', '.join(manifest.get('models_expected', []))}; it holds {', '.join(manifest.get('models_found', []))}.",
            "",
        ]
    gate = manifest.get("gate")
    if gate:
        lines += [
            f"Accuracy gate (chooses the int8 rungs and judges fp16 and the OpenVINO variants, on {gate['split']}; "
            f"{_scored(manifest['eval'])} is scored once, for the variant kept): int8, openvino and openvino-int8 "
            "within the F1 budget and word-label agreement with PyTorch fp32 (on words: the merged word logits "
            f"every prediction reads, not [CLS]/[SEP] or continuation sub-tokens) of at least "
            f"{gate['int8_agreement_floor']:.0%}; fp16 within {gate['fp16_budget_f1_points']} F1 points and "
            f"{gate['fp16_agreement_floor']:.0%} word agreement; a model answering one label on nearly every word "
            "is refused as collapsed. int8 quantised for "
            f"**{manifest['machine'].get('int8_isa_name', manifest['machine'].get('int8_isa', '?'))}**.",
            "",
        ]
    for name, model in manifest["models"].items():
        torch_fig = model["pytorch"]
        lines += [
            f"## {name} ({torch_fig['model_type']}, {torch_fig['parameters'] / 1e6:.2f} M parameters)",
            "",
            "| variant | size MB | max abs diff | mean abs diff | word agree | F1 | ΔF1 pts | gate | batch-sensitive | latency ms | export s |",
            "|---|---:|---:|---:|---:|---:|---:|:---:|---:|---:|---:|",
            f"| PyTorch fp32 | — | — | — | — | {torch_fig['f1']:.4f} | — | — | — | {torch_fig['latency_ms']:.2f} | — |",
        ]
        for variant, fig in model["variants"].items():
            parity = fig.get("parity", {})
            f1 = fig.get("f1")
            label = variant if "method" not in fig else f"{variant} ({fig['method']})"
            if fig.get("inference_precision"):
                label += f", {fig['inference_precision']}"
            if variant == "fp16" and not fig.get("scored", True):
                label += " — not scored"
            lines.append(
                f"| {label} | {_mb(fig.get('size_bytes'))} | {_num(parity.get('max_abs_diff'), '.2e')} | "
                f"{_num(parity.get('mean_abs_diff'), '.2e')} | {_num(fig.get('word_agreement'), '.2%')} | "
                f"{_num(f1, '.4f')} | {_num(fig.get('delta_f1_points'), '+.2f')} | {_verdict(fig)} | "
                f"{_sensitivity(fig.get('batch_sensitivity'))} | "
                f"{_num(fig.get('latency_ms'), '.2f')} | {_num(fig.get('export_seconds'), '.1f')} |"
            )
        for variant, failed in model.get("not_built", {}).items():
            lines.append(f"| {variant} — **not built**: {failed['error']} | | | | | | | | | | |")
        lines.append("")
        notes = []
        if "fp32-optimized" in model["variants"]:
            fused = model["variants"]["fp32-optimized"]["fusions"]
            notes.append("Fusions: " + (", ".join(f"{k} ×{v}" for k, v in fused.items()) or "none"))
        fp16 = model["variants"].get("fp16")
        if fp16 is not None:
            verdict = fp16.get("gate") or {}
            gate_text = (
                f"; gate: {'passes' if verdict.get('passes') else 'fails: ' + str(verdict.get('why_not'))}"
                f" (word agreement {_agreement(verdict)})"
                if verdict
                else ""
            )
            notes.append(
                "fp16: "
                + (fp16.get("note") or fp16.get("not_scored_reason") or f"scored on {fp16.get('scored_on')}")
                + gate_text
            )
        for variant in ("openvino", "openvino-int8"):
            fig = model["variants"].get(variant)
            if fig is not None and fig.get("gate"):
                verdict = fig["gate"]
                notes.append(
                    f"{variant} (OpenVINO {fig.get('inference_precision', '?')} on this CPU): gate "
                    + ("passes" if verdict.get("passes") else "fails: " + str(verdict.get("why_not")))
                    + f" (F1 {verdict['delta_f1_points']:+.2f} points, word agreement {_agreement(verdict)})"
                )
        gpu_why = f" ({model['recommended_gpu_reason']})" if model.get("recommended_gpu_reason") else ""
        gpu = model.get("recommended_gpu")
        notes.append(
            f"Recommended on CPU: **{model['recommended_cpu'] or 'none'}** ({model['recommended_cpu_reason']}); "
            f"on GPU: {f'**{gpu}**' if gpu else 'none'}{gpu_why}."
        )
        lines += [f"- {n}" for n in notes] + [""]
        lines += choice_table(model)
        scored = {"PyTorch fp32": torch_fig.get("metrics", {})}
        scored |= {v: fig["metrics"] for v, fig in model["variants"].items() if fig.get("metrics")}
        if any("per_type" in m for m in scored.values()):
            lines += per_type_table(scored, manifest.get("labels"))
        int8 = model["variants"].get("int8")
        if int8 is not None:
            lines += [
                "int8 attempts (gate F1 and agreement on the gate forms; latency: median of interleaved rounds; the "
                "plain recipe is kept unless another passing rung is faster by more than the margin):",
                "",
                "| attempt | gate F1 | ΔF1 pts | word agree | passes gate | latency ms | spread | size MB | note |",
                "|---|---:|---:|---:|:---:|---:|---:|---:|---|",
            ]
            for attempt in int8["attempts"]:
                kept = " (kept)" if attempt["name"] == int8["method"] else ""
                verdict = attempt.get("details", {}).get("gate", {})
                timing = attempt.get("details", {}).get("timing", {})
                note = attempt["error"] or verdict.get("why_not") or attempt["description"]
                lines.append(
                    f"| {attempt['name']}{kept} | {_num(attempt['f1'], '.4f')} | {_num(attempt['delta_f1_points'], '+.2f')} | "
                    f"{_agreement(verdict)} | {'yes' if attempt['meets_budget'] else 'no'} | "
                    f"{_num(attempt['latency_ms'], '.2f')} | {_num(timing.get('spread'), '.1%')} | "
                    f"{_mb(attempt['size_bytes'])} | {note} |"
                )
            choice = int8.get("choice")
            if choice:
                lines += [
                    "",
                    f"Choice: {choice['rule']} ({choice['margin']:.0%} here: the 10% tie, the worst interquartile "
                    f"spread, plus the {choice['other_processes_cores']:.2f} cores other processes held while "
                    f"timing; {choice['rounds']} interleaved rounds on a batch of {choice['batch']}).",
                ]
            if not int8["meets_budget"]:
                lines += [
                    "",
                    f"No int8 attempt met the budget; `{int8['method']}` (the most accurate) is written, not recommended.",
                ]
            lines.append("")
        lines += openvino_attempts(model["variants"].get("openvino-int8"))
    return "\n".join(lines)


def _scored(eval_: dict[str, Any]) -> str:
    """The scored forms in words: `description` names held-out training forms as such."""
    return eval_.get("description") or f"the {eval_['split']} split ({eval_['forms']} forms)"


def _agreement(verdict: dict[str, Any]) -> str:
    # Manifests from before agreement was counted on words counted tokens: say so rather than pass them off.
    if not verdict:
        return "—"
    if "word_agreement" in verdict:
        return _num(verdict["word_agreement"], ".2%")
    return _num(verdict.get("argmax_agreement"), ".2%") + " (tokens)"


def _verdict(fig: dict[str, Any]) -> str:
    if "meets_gate" in fig:
        return "passes" if fig["meets_gate"] else "fails"
    return "parity" if "parity" in fig and fig["parity"].get("within_tolerance") else "—"


def _sensitivity(found: dict[str, Any] | None) -> str:
    if not found:
        return "—"
    if found["invariant"]:
        return "none"
    return f"{found['words_changed']} of {found['words']} words"


def choice_table(model: dict[str, Any]) -> list[str]:
    """The timings the CPU recommendation was made on, one row per candidate."""
    choice = model.get("recommended_cpu_choice") or {}
    candidates = choice.get("candidates") or []
    shapes = list(dict.fromkeys(s for c in candidates for s in c.get("timings_ms", {})))
    if not candidates or not shapes:
        return []
    lines = [
        f"CPU choice ({choice['rule']}; margin {choice['margin']:.0%}: the 10% tie, the worst interquartile spread "
        "and the share of the cores other processes held while timing), medians of interleaved rounds:",
        "",
        "| variant | " + " | ".join(f"{s} ms" for s in shapes) + " | batch-stable | verdict |",
        "|---|" + "---:|" * len(shapes) + ":---:|---|",
    ]
    for c in candidates:
        cells = [_num(c.get("timings_ms", {}).get(s), ".2f") for s in shapes]
        invariant = {True: "yes", False: "no", None: "—"}[c.get("batch_stable", c.get("batch_invariant"))]
        lines.append(f"| {c['variant']} | " + " | ".join(cells) + f" | {invariant} | {c.get('note', '')} |")
    return lines + [""]


def openvino_attempts(fig: dict[str, Any] | None) -> list[str]:
    """NNCF's rungs as tried, in order, until one passed the gate."""
    if not fig or not fig.get("attempts"):
        return []
    lines = [
        "OpenVINO int8 attempts (NNCF; tried in order until one passes the gate on the gate forms):",
        "",
        "| attempt | gate F1 | ΔF1 pts | word agree | passes gate | size MB | seconds | note |",
        "|---|---:|---:|---:|:---:|---:|---:|---|",
    ]
    for attempt in fig["attempts"]:
        kept = " (kept)" if attempt["name"] == fig["method"] else ""
        verdict = attempt.get("details", {}).get("gate", {})
        note = attempt["error"] or verdict.get("why_not") or attempt["description"]
        lines.append(
            f"| {attempt['name']}{kept} | {_num(attempt['f1'], '.4f')} | {_num(attempt['delta_f1_points'], '+.2f')} | "
            f"{_agreement(verdict) if verdict else '—'} | {'yes' if attempt['meets_budget'] else 'no'} | "
            f"{_mb(attempt['size_bytes'])} | {_num(attempt.get('details', {}).get('quantize_seconds'), '.1f')} | {note} |"
        )
    if not fig["meets_gate"]:
        lines += [
            "",
            f"No OpenVINO int8 rung passed the gate; `{fig['method']}` (the most accurate) is written, not recommended.",
        ]
    return lines + [""]


def write(manifest: dict[str, Any], report_dir: Path) -> Path:
    return atomic.write_text(Path(report_dir) / "export.md", render(manifest))
