"""reports/export.md from the manifest: one table per model, then the int8 attempts, in one screen."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from distill import atomic
from distill.commands import portable_command, uses_placeholder
from distill.report import per_type_table


def _mb(size: int | None) -> str:
    return "—" if size is None else f"{size / 1e6:.2f}"


def _num(value: float | None, fmt: str) -> str:
    return "—" if value is None else format(value, fmt)


def written_by(manifest: dict[str, Any]) -> str:
    """The export command, its run directory as RUN unless given relative (distill/commands.py)."""
    words = shlex.split(
        manifest.get("command") or f"python -m export.onnx --run-dir {shlex.quote(manifest['run'])}"
    )
    return portable_command(words, {"RUN": manifest["run"]})


def render(manifest: dict[str, Any]) -> str:
    lines = [
        "# ONNX export",
        "",
        f"Written by `{written_by(manifest)}`"
        + ("; RUN: the run directory below." if uses_placeholder(written_by(manifest), "RUN") else "."),
        f"Run `{manifest['run']}`, exported {manifest['created']} on {manifest['machine']['cpu']} "
        f"({manifest['machine']['threads']} threads; int8 features: {', '.join(manifest['machine']['int8_features']) or 'none'}).",
        f"onnxruntime {manifest['versions']['onnxruntime']}, optimum {manifest['versions']['optimum']}, "
        f"torch {manifest['versions']['torch']}, transformers {manifest['versions']['transformers']}.",
        "",
        f"F1: entity F1 on the {manifest['eval']['split']} split ({manifest['eval']['forms']} forms, "
        f"{manifest['eval']['words']} words), window-merged as in training. Parity: logits against PyTorch "
        f"on up to {manifest['eval']['parity_windows']} evaluation windows. Latency: fastest of several calls on "
        f"a batch of {manifest['eval']['batch_size']} evaluation windows on this CPU, to rank variants "
        "(int8: the median of the interleaved rounds its choice was made on; the bench measures properly). int8 budget: "
        f"{manifest['int8_budget']} F1 points against PyTorch.",
        "",
    ]
    gate = manifest.get("gate")
    if gate:
        lines += [
            f"Accuracy gate (chooses the int8 rung and judges fp16, on {gate['split']}; the test split is scored "
            f"once, for the variant kept): int8 within the F1 budget and argmax agreement with PyTorch fp32 of at "
            f"least {gate['int8_agreement_floor']:.0%}; fp16 within {gate['fp16_budget_f1_points']} F1 points and "
            f"{gate['fp16_agreement_floor']:.0%} agreement; a model answering one label nearly everywhere is "
            "refused as collapsed. int8 quantised for "
            f"**{manifest['machine'].get('int8_isa_name', manifest['machine'].get('int8_isa', '?'))}**.",
            "",
        ]
    for name, model in manifest["models"].items():
        torch_fig = model["pytorch"]
        lines += [
            f"## {name} ({torch_fig['model_type']}, {torch_fig['parameters'] / 1e6:.2f} M parameters)",
            "",
            "| variant | size MB | max abs diff | mean abs diff | argmax agree | F1 | ΔF1 pts | latency ms | export s |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
            f"| PyTorch fp32 | — | — | — | — | {torch_fig['f1']:.4f} | — | {torch_fig['latency_ms']:.2f} | — |",
        ]
        for variant, fig in model["variants"].items():
            parity = fig.get("parity", {})
            f1 = fig.get("f1")
            label = variant if variant != "int8" else f"int8 ({fig['method']})"
            if variant == "fp16" and not fig.get("scored", True):
                label += " — not scored"
            lines.append(
                f"| {label} | {_mb(fig.get('size_bytes'))} | {_num(parity.get('max_abs_diff'), '.2e')} | "
                f"{_num(parity.get('mean_abs_diff'), '.2e')} | {_num(parity.get('argmax_agreement'), '.2%')} | "
                f"{_num(f1, '.4f')} | {_num(fig.get('delta_f1_points'), '+.2f')} | "
                f"{_num(fig.get('latency_ms'), '.2f')} | {_num(fig.get('export_seconds'), '.1f')} |"
            )
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
                f" (agreement {verdict['argmax_agreement']:.2%})"
                if verdict
                else ""
            )
            notes.append(
                "fp16: "
                + (fp16.get("note") or fp16.get("not_scored_reason") or f"scored on {fp16.get('scored_on')}")
                + gate_text
            )
        gpu_why = f" ({model['recommended_gpu_reason']})" if model.get("recommended_gpu_reason") else ""
        notes.append(
            f"Recommended on CPU: **{model['recommended_cpu']}** ({model['recommended_cpu_reason']}); "
            f"on GPU: **{model['recommended_gpu']}**{gpu_why}."
        )
        lines += [f"- {n}" for n in notes] + [""]
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
                "| attempt | gate F1 | ΔF1 pts | agree | passes gate | latency ms | spread | size MB | note |",
                "|---|---:|---:|---:|:---:|---:|---:|---:|---|",
            ]
            for attempt in int8["attempts"]:
                kept = " (kept)" if attempt["name"] == int8["method"] else ""
                verdict = attempt.get("details", {}).get("gate", {})
                timing = attempt.get("details", {}).get("timing", {})
                note = attempt["error"] or verdict.get("why_not") or attempt["description"]
                lines.append(
                    f"| {attempt['name']}{kept} | {_num(attempt['f1'], '.4f')} | {_num(attempt['delta_f1_points'], '+.2f')} | "
                    f"{_num(verdict.get('argmax_agreement'), '.2%')} | {'yes' if attempt['meets_budget'] else 'no'} | "
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
                    f"No int8 attempt met the budget; `{int8['method']}` (the most accurate) is written, fp32 stays recommended.",
                ]
            lines.append("")
    return "\n".join(lines)


def write(manifest: dict[str, Any], report_dir: Path) -> Path:
    return atomic.write_text(Path(report_dir) / "export.md", render(manifest))
