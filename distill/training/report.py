"""reports/training.md: every trained model's scores, size and training time on one screen."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from distill import atomic
from distill.commands import portable_run, run_word
from distill.machine import machine_summary
from distill.tables import pct, per_type_table

TRAINING_REPORT = "training.md"


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def render_training_report(metrics: dict[str, Any], run: Path) -> str:
    models: dict[str, dict] = metrics.get("models", {})
    where = run_word(run)  # relative, or RUN (the run above): no writer's path
    lines = [
        "# Training report",
        "",
        f"Run {portable_run(run)} on {machine_summary()}. Written by `python -m distill.train`; the run's "
        f"config.toml holds every option: `python -m distill.train --config {where}/config.toml "
        f"--output-dir NEW_DIR` repeats it{' (RUN: that run directory)' if where == 'RUN' else ''}.",
        f"Data: `{metrics.get('data')}` — {metrics.get('train_forms')} training forms, "
        f"{metrics.get('test_forms')} test forms ({metrics.get('test_words')} words); seed {metrics.get('seed')}; "
        f"windows of {metrics['encoding']['max_length']} sub-tokens, stride {metrics['encoding']['stride']}.",
        "Scores are per word (each word predicted once, windows merged), seqeval entity level.",
        "",
        "| model | architecture | params | size | entity P | entity R | entity F1 | word acc. | train time |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, m in models.items():
        train = f"{m['train_seconds']:.1f} s" if "train_seconds" in m else "reused"
        lines.append(
            f"| {name} | {m['architecture']} | {m['params'] / 1e6:.2f} M | {_mb(m['size_bytes'])} | {pct(m['precision'])} | "
            f"{pct(m['recall'])} | **{pct(m['f1'])}** | {pct(m['word_accuracy'])} | {train} |"
        )
    lines += ["", *per_type_table(models, metrics.get("labels"))]
    lines += [f"Data note: {note}." for note in metrics.get("data_notes", [])]
    lines += teacher_loss_lines(models.get("teacher", {}))
    lines += distillation_lines(metrics)
    v = metrics.get("versions", {})
    lines += ["", "Versions: " + ", ".join(f"{k} {val}" for k, val in v.items()) + "."]
    return "\n".join(lines) + "\n"


def write_training_report(metrics: dict[str, Any], report_dir: Path, run: Path) -> Path:
    return atomic.write_text(report_dir / TRAINING_REPORT, render_training_report(metrics, run))


def distilled(d: dict[str, Any]) -> bool:
    """Whether the run's student distilled (metrics.json before declared terms: alpha or feature weight)."""
    if "distilled" in d:
        return bool(d["distilled"])
    return d.get("alpha", 0) > 0 or d.get("feature_weight", 0) > 0


def loss_formula(d: dict[str, Any]) -> str:
    """The declared loss, term by term (distill/terms/declared.py), from metrics.json's record."""
    from distill.terms.declared import LossTerm, describe

    if "terms" in d:
        terms = [LossTerm(t["term"], t["weight"], {k: v for k, v in t.items() if k not in ("term", "weight")})
                 for t in d["terms"]]  # fmt: skip
        return describe(terms)
    return f"loss = {d['alpha']} · T²·KL(teacher/T ‖ student/T) + {1 - d['alpha']:.2f} · CE, T = {d['temperature']}"


def teacher_loss_lines(teacher: dict[str, Any]) -> list[str]:
    """The loss the teacher was fine-tuned on, where it is not plain cross-entropy (--teacher-loss)."""
    loss = teacher.get("loss") or {}
    if loss.get("kind", "ce") == "ce":
        return []
    formula = loss_formula(loss) if "terms" in loss else "its own loss"  # records before declared terms
    line = f"The teacher was fine-tuned on {formula} (--teacher-loss {loss['kind']})"
    weights = loss.get("class_weights")
    if weights:
        line += "; class weights " + ", ".join(f"{tag} {w:g}" for tag, w in weights.items())
    return ["", line + "."]


def distillation_lines(metrics: dict[str, Any]) -> list[str]:
    """The distillation settings, what the teacher cost, and the distilled student against its baseline."""
    lines: list[str] = []
    collapse = metrics.get("teacher_collapse")
    if collapse:
        what = "distilled from anyway (--distil-collapsed-teacher)" if collapse.get("distilled_anyway") else (
            "so no student was distilled from it (pass --distil-collapsed-teacher to distil anyway)"
        )  # fmt: skip
        lines += [
            "",
            f"**The teacher has collapsed**: it predicts {collapse['label']} for {100 * collapse['predicted_share']:.1f}% "
            f"of the training words, where the labels give it {100 * collapse['label_share']:.1f}%; {what}.",
        ]
    if "distillation" not in metrics:
        return lines
    d = metrics["distillation"]
    if not distilled(d):
        return lines + ["", f"Students trained without distillation ({loss_formula(d)}): plain fine-tuning."]
    transfer = metrics.get("transfer_set")
    lines += [
        "",
        "## Distillation",
        "",
        f"Distillation from `{d['teacher']}`: {loss_formula(d)}; "
        + (
            "the word-level terms on labelled words, the layer-to-layer ones on every real token (the "
            "frozen teacher run on the student's windows). "
            if any("layer_S" in t for t in d.get("terms", []))
            else "on labelled words. "
        )
        + (transfer_sentence(transfer) if transfer else "")
        + f"Teacher targets cached once in {metrics.get('teacher_cache_seconds', 0):.1f} s.",
    ]
    student, base = (
        metrics.get("models", {}).get("student"),
        metrics.get("models", {}).get("student-baseline"),
    )
    if student and base and "train_seconds" in student and "train_seconds" in base:
        overhead = student["train_seconds"] / base["train_seconds"] - 1
        gain = student["f1"] - base["f1"]
        lines.append(
            f"Same budget, same initialisation: distilled F1 {pct(student['f1'])} vs {pct(base['f1'])} without "
            f"distillation ({100 * gain:+.1f} points); training time {student['train_seconds']:.1f} s vs "
            f"{base['train_seconds']:.1f} s ({100 * overhead:+.0f}%)."
        )
    return lines


def transfer_sentence(transfer: dict[str, Any]) -> str:
    """What training.md says of the transfer set (metrics.json's `transfer_set`)."""
    words = {
        "neighbours": "nearest neighbours in the teacher's word embeddings",
        "random": "random training words",
    }
    steps = (
        "the baseline's number of optimiser steps"
        if transfer.get("steps") == "same"
        else "more optimiser steps (each copy adds its own)"
    )
    changed = transfer.get("changed_words")
    views = (
        f", and Tesseract's reading of each training page at scale {transfer['ocr']}"
        if transfer.get("ocr")
        else ""
    )
    return (
        f"Transfer set: {transfer['copies']} teacher-labelled augmented copies of each training form{views} "
        f"({transfer['forms']} forms) join the distilled student's data, at {steps}; a word is replaced "
        f"with probability {transfer.get('replace', 0.15)} by one of its "
        f"{words.get(transfer.get('candidates', 'random'), 'candidates')} (numbers by the same shape)"
        + (f", {100 * changed:.1f}% of the copies' words changed" if changed is not None else "")
        + (
            "; changed words keep their tags. "
            if transfer.get("hard_tags")
            else "; changed words keep no hard tag. "
        )
    )
