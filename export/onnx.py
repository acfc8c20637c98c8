"""`python -m export.onnx`: export a run's models to ONNX (fp32, fused, int8, fp16) and OpenVINO
(openvino, openvino-int8), validate and score each, and recommend the variant to serve, by measurement.

    python -m export.onnx                              # runs/latest, every model and variant
    python -m export.onnx --run-dir runs/qs --models student --variants fp32,int8

Writes <run>/onnx/<model>/<variant>/model.onnx (OpenVINO variants: openvino_model.xml + .bin), with the
tokenizer and config files beside it, <run>/onnx/manifest.json and <report-dir>/export.md.
"""

from __future__ import annotations

import argparse
import datetime
import os
import shlex
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from distill import atomic
from distill.console import quiet_library_noise
from distill.data.run_data import load_run_data, run_labels
from distill.errors import DistillError
from distill.labels import tag_names
from distill.machine import cpu_info, cpu_name, package_versions
from distill.perturb import JITTER, REPLACE_RATE, augment
from distill.run_dir import BASELINE, STUDENT, TEACHER, model_dirs, read_config, resolve_run_dir
from export import report
from export.export_types import ONNX_DIR, VARIANTS, EvalData, ExportOptions
from export.isa import describe as describe_isa
from export.isa import int8_isa
from export.openvino_ir import ATTEMPTS as OPENVINO_ATTEMPTS
from export.pipeline import ModelExport
from export.quantize import ATTEMPTS
from export.validate import FP16_AGREEMENT_FLOOR, FP16_BUDGET_POINTS, INT8_AGREEMENT_FLOOR

MODELS = (TEACHER, STUDENT, BASELINE)
MANIFEST = "manifest.json"
INT8_FEATURES = ("avx512_vnni", "avx_vnni", "amx_int8", "avx512bw", "avx2")


class DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows defaults, except None ones: their help already says what None means."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        return action.help if action.default is None else super()._get_help_string(action)


def _choices(value: str | None, valid: Sequence[str], what: str) -> list[str] | None:
    """A comma-separated option checked against `valid`; None when not given."""
    if value is None:
        return None
    items = [v.strip() for v in value.split(",") if v.strip()]
    unknown = [v for v in items if v not in valid]
    if unknown or not items:
        raise DistillError(
            f"unknown {what} {', '.join(map(repr, unknown)) or '(none given)'}: valid {what}s are {', '.join(valid)}"
        )
    return items


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m export.onnx",
        description="Export a run's teacher and students to ONNX (fp32, fp32-optimized, int8, fp16) and OpenVINO "
        "(openvino, openvino-int8), check each against PyTorch, score it on the run's scored split, choose the "
        "CPU variant to serve by interleaved timing, and write onnx/manifest.json and export.md.",
        formatter_class=DefaultsHelpFormatter,
    )
    parser.add_argument("--run-dir", default=None, help="run directory to export (default: runs/latest)")
    parser.add_argument(
        "--models",
        default=None,
        help="comma-separated model directories of the run, e.g. teacher,student (default: all the run has)",
    )
    parser.add_argument(
        "--variants",
        default=None,
        help=f"comma-separated variants among {', '.join(VARIANTS)} (default: all)",
    )
    parser.add_argument(
        "--int8-budget", type=float, default=1.0, help="F1 points an int8 variant may lose against PyTorch"
    )
    parser.add_argument(
        "--int8-attempts",
        default=None,
        help=f"comma-separated quantisation attempts to try, among {', '.join(ATTEMPTS)} (default: all)",
    )
    parser.add_argument(
        "--openvino-attempts",
        default=None,
        help="comma-separated OpenVINO int8 rungs to try in order until one passes the gate, among "
        f"{', '.join(OPENVINO_ATTEMPTS)} (default: all)",
    )
    parser.add_argument(
        "--atol",
        type=float,
        default=None,
        help="fp32 parity bound on max |logit diff| (default: 1e-4 students, 1e-3 teacher)",
    )
    parser.add_argument(
        "--max-eval-forms", type=int, default=None, help="score on the first N test forms only (default: all)"
    )
    parser.add_argument(
        "--parity-windows", type=int, default=64, help="evaluation windows compared with PyTorch"
    )
    parser.add_argument(
        "--calibration-windows", type=int, default=64, help="training windows for static int8 calibration"
    )
    parser.add_argument(
        "--gate-forms",
        type=int,
        default=16,
        help="training forms held out of calibration for the int8/fp16/OpenVINO accuracy gate (at most half "
        "the training split; the scored split is scored once, for the variant kept)",
    )
    parser.add_argument("--batch-size", type=int, default=8, help="windows per batch when scoring and timing")
    parser.add_argument(
        "--latency-repeats", type=int, default=10, help="timed calls per variant (the fastest is reported)"
    )
    parser.add_argument(
        "--opset", type=int, default=None, help="ONNX opset (default: optimum's for the model type)"
    )
    parser.add_argument("--report-dir", default="reports", help="where export.md goes")
    return parser


def machine() -> dict[str, Any]:
    flags = set(cpu_info().get("flags", []))
    isa = int8_isa(flags)
    return {
        "cpu": cpu_name(),
        "threads": os.cpu_count(),
        "int8_features": [f for f in INT8_FEATURES if f in flags],
        "int8_isa": isa,  # what the int8 variants were chosen and timed for (the bench warns elsewhere)
        "int8_isa_name": describe_isa(isa),
    }


def versions() -> dict[str, str]:
    return package_versions(
        ("onnxruntime", "onnx", "optimum", "optimum-onnx", "openvino", "nncf", "torch", "transformers")
    )


def load_eval_data(run: Path, max_eval_forms: int | None, gate_forms: int = 16) -> EvalData:
    config = read_config(run)
    data = load_run_data(config)
    test = data["test"]
    total = len(test)
    if max_eval_forms is not None:
        test = test.select(range(min(max_eval_forms, len(test))))
    columns = ("tokens", "bboxes", "image", "ner_tags")
    train = [{k: row[k] for k in columns} for row in data["train"]]
    # The gate's forms: the last training forms, kept out of the calibration windows (drawn from the start),
    # as perturbed copies (see gate_copies): the model was trained on the forms themselves.
    held = max(0, min(gate_forms, len(train) // 2))
    names = tag_names(data["train"], "the training split")
    calibration = train[: len(train) - held]
    # A --holdout-forms run is scored on training forms it held out: never call them the test split.
    part = f"{len(test)} forms" if len(test) == total else f"its first {len(test)} of {total} forms"
    split, split_text = "test", f"the test split ({part})"
    if config.holdout_forms:
        split = "held-out"
        split_text = f"held-out training forms ({part}, --holdout-forms {config.holdout_forms})"
    return EvalData(
        test_forms=[{k: row[k] for k in columns} for row in test],
        train_forms=calibration,
        max_length=config.max_length,
        stride=config.stride,
        split=split,
        split_text=split_text,
        gate_forms=gate_copies(train[len(train) - held :], train, names),
        gate_source=f"perturbed copies of {held} training forms held out of calibration",
        labels=run_labels(data),
        validation_forms=gate_copies(calibration[:VALIDATION_FORMS], train, names, copies=1),
    )


VALIDATION_FORMS = 8  # calibration forms whose perturbed copies OpenVINO's accuracy control validates on


GATE_COPIES = 2  # perturbed copies of each gate form


def gate_copies(
    forms: list[dict[str, Any]], train: list[dict[str, Any]], names: list[str], copies: int = GATE_COPIES
) -> list[dict[str, Any]]:
    """Perturbed copies of the gate forms: inputs the model never trained on, drawn from training data only.

    A model scores the forms it was trained on almost perfectly and with large margins, so quantisation
    noise hardly flips a label there: measured on a FUNSD MiniLM student, int8 kept 99.96% of word labels
    on its own training forms but 95.2% on the test split, and 94.1% on these copies (segments
    shuffled, 15% of words replaced by training words, boxes jittered; distill.training.transfer_set.augment).
    """
    rng = np.random.default_rng(0)
    vocabulary = [word for form in train for word in form["tokens"]]
    return [
        augment(form, vocabulary, rng, REPLACE_RATE, JITTER, names) for form in forms for _ in range(copies)
    ]


def carry_over(previous: Path, staging: Path, exported: Sequence[str]) -> None:
    """The previous export's other models, hard-linked into the staging copy (copied where links fail):
    the swap replaces onnx/ whole, and models this export does not redo stand as they were."""
    if not previous.is_dir():
        return
    for item in previous.iterdir():
        # Hidden names are leftovers of interrupted exports; the manifest is rewritten.
        if item.name in exported or item.name == MANIFEST or item.name.startswith("."):
            continue
        if item.is_dir():
            shutil.copytree(item, staging / item.name, copy_function=_link_or_copy, symlinks=True)
        else:
            _link_or_copy(item, staging / item.name)


def _link_or_copy(src: str | Path, dst: str | Path) -> None:
    try:
        os.link(src, dst)
    except OSError:  # another filesystem, or links not allowed
        shutil.copy2(src, dst)


def write_manifest(
    run: Path, entries: dict[str, Any], header: dict[str, Any], staging: Path
) -> dict[str, Any]:
    """Merge this export's models into the previous manifest, written into the staging copy of onnx/;
    entries of models not in it are dropped."""
    path = run / ONNX_DIR / MANIFEST
    models: dict[str, Any] = {}
    if path.is_file():
        from distill.run_dir import read_json

        try:
            models = read_json(path).get("models", {})
        except DistillError:
            models = {}  # a corrupt manifest is rewritten from what this export measured
    models = {name: entry for name, entry in models.items() if (staging / name).is_dir()}
    models.update(entries)
    order = [*MODELS, *sorted(set(models) - set(MODELS))]
    ordered = {name: models[name] for name in order if name in models}
    # The variant each model's export recommends, in one place for the prediction CLI and the bench.
    recommended = {
        device: {name: entry.get(f"recommended_{device}") for name, entry in ordered.items()}
        for device in ("cpu", "gpu")
    }
    manifest = {**header, "recommended": recommended, "models": ordered}
    atomic.write_json(staging / MANIFEST, manifest)
    return manifest


def export_run(args: argparse.Namespace) -> dict[str, Any]:
    variants = _choices(args.variants, VARIANTS, "variant") or list(VARIANTS)
    attempts = _choices(args.int8_attempts, list(ATTEMPTS), "int8 attempt") or list(ATTEMPTS)
    ov_attempts = _choices(
        getattr(args, "openvino_attempts", None), list(OPENVINO_ATTEMPTS), "OpenVINO int8 attempt"
    ) or list(OPENVINO_ATTEMPTS)
    requested = [m.strip() for m in args.models.split(",") if m.strip()] if args.models else None
    run = resolve_run_dir(args.run_dir)
    present = list(model_dirs(run))
    models = requested or present
    missing = [m for m in models if m not in present]
    if missing or not models:
        raise DistillError(
            f"no {', '.join(missing) or 'model'} directory in this run (it has: {', '.join(present) or 'none'}): "
            "run `python -m distill.train` first",
            run,
        )
    expected = expected_models(run)
    absent = [m for m in expected if m not in present]
    if absent and requested is None:
        # A run whose student never finished (or was removed) must not pass for a full export.
        print(
            f"warning: {run} has {', '.join(present)}; its config.toml and metrics.json expect "
            f"{', '.join(expected)}: {', '.join(absent)} missing (not trained yet, or removed), so "
            f"only {', '.join(present)} will be exported",
            file=sys.stderr,
        )
    options = ExportOptions(
        variants=variants,
        int8_budget=args.int8_budget,
        int8_attempts=attempts,
        openvino_attempts=ov_attempts,
        atol=args.atol,
        batch_size=args.batch_size,
        parity_windows=args.parity_windows,
        calibration_windows=args.calibration_windows,
        latency_repeats=args.latency_repeats,
        opset=args.opset,
    )
    data = load_eval_data(run, args.max_eval_forms, args.gate_forms)
    # One swap for the whole export: every model and the manifest are built in a staging copy of onnx/
    # that replaces it at the end, so a failure or Ctrl-C in any model leaves the previous export whole.
    with atomic.directory(run / ONNX_DIR) as staging:
        carry_over(run / ONNX_DIR, staging, models)
        manifest = export_models(run, models, data, options, staging, args)
    report.write(manifest, Path(args.report_dir))
    return manifest


def export_models(
    run: Path,
    models: Sequence[str],
    data: EvalData,
    options: ExportOptions,
    staging: Path,
    args: argparse.Namespace,
) -> dict[str, Any]:
    """Export each model into `staging` (the new onnx/) and write its manifest there; returns the manifest."""
    entries = {}
    for name in models:
        print(f"exporting {name} ({', '.join(options.variants)})", file=sys.stderr)
        entries[name] = ModelExport(name, run / name, run, data, options).export(staging / name)
    present = list(model_dirs(run))
    expected = expected_models(run)
    header = {
        "run": str(run),
        "command": getattr(args, "command", None),
        "created": datetime.datetime.now().isoformat(timespec="seconds"),
        "versions": versions(),
        "machine": machine(),
        "int8_budget": args.int8_budget,
        "labels": list(data.labels.types) if data.labels else None,
        "models_found": present,
        "models_expected": expected,
        "models_missing": [m for m in expected if m not in present],
        "eval": {
            "split": data.split,
            "description": data.scored,
            "forms": len(data.test_forms),
            "words": sum(len(f["tokens"]) for f in data.test_forms),
            "parity_windows": args.parity_windows,
            "batch_size": args.batch_size,
            "max_length": data.max_length,
            "stride": data.stride,
        },
        "gate": {
            "split": data.gate_split,
            "forms": len(data.gate_forms),
            "agreement_on": "words: the argmax of the merged word logits every prediction reads",
            "int8_agreement_floor": INT8_AGREEMENT_FLOOR,
            "fp16_agreement_floor": FP16_AGREEMENT_FLOOR,
            "fp16_budget_f1_points": FP16_BUDGET_POINTS,
        },
    }
    for entry in entries.values():
        # A later export of another model rewrites the header: each model keeps its own conditions.
        entry["exported"] = {k: header[k] for k in ("created", "int8_budget", "eval", "gate", "machine")}
    return write_manifest(run, entries, header, staging)


def expected_models(run: Path) -> list[str]:
    """The models a run should hold: those its metrics.json records, and those its config.toml trains
    (the teacher unless it came from elsewhere, the student, the baseline when asked for)."""
    config = read_config(run)
    expected = set()
    teacher_dirs = [d for d in config.teacher_dir.split(",") if d]
    if config.stage in ("all", "teacher") and not teacher_dirs:
        expected.add(TEACHER)
    if config.stage in ("all", "student"):
        expected.add(STUDENT)
        if config.baseline:
            expected.add(BASELINE)
    metrics_path = run / "metrics.json"
    if metrics_path.is_file():
        from distill.run_dir import read_json

        try:
            recorded = read_json(metrics_path).get("models", {})
        except DistillError:
            recorded = {}
        # An ensemble teacher (--teacher-dir A,B) is recorded but lives in its members' directories.
        expected |= {m for m in recorded if m != TEACHER or len(teacher_dirs) < 2}
    return [*[m for m in MODELS if m in expected], *sorted(expected - set(MODELS))]


def summary(manifest: dict[str, Any]) -> str:
    lines = []
    for name, model in manifest["models"].items():
        lines.append(
            f"{name}: PyTorch F1 {model['pytorch']['f1']:.4f}; recommended on CPU: {model['recommended_cpu']} "
            f"({model['recommended_cpu_reason']})"
        )
        for variant, fig in model["variants"].items():
            f1 = (
                "not scored"
                if fig.get("f1") is None
                else f"F1 {fig['f1']:.4f} ({fig['delta_f1_points']:+.2f} pts)"
            )
            diff = fig.get("parity", {}).get("max_abs_diff")
            parity = "" if diff is None else f", max |diff| {diff:.2e}"
            lines.append(f"  {variant:<15} {fig['size_bytes'] / 1e6:8.2f} MB  {f1}{parity}")
        for variant, failed in model.get("not_built", {}).items():
            lines.append(f"  {variant:<15} not built: {failed['error']}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.command = shlex.join(["python", "-m", "export.onnx", *argv])  # written into the report as it ran
    import onnxruntime as ort
    from transformers.utils import logging as hf_logging

    ort.set_default_logger_severity(3)  # onnxruntime-gpu warns about CUDA on every CPU-only session
    hf_logging.set_verbosity_error()
    quiet_library_noise()
    try:
        manifest = export_run(args)
    except DistillError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(summary(manifest))
    if manifest.get("models_missing"):
        print(f"not exported (missing from the run): {', '.join(manifest['models_missing'])}")
    print(f"wrote {Path(manifest['run']) / ONNX_DIR / MANIFEST} and {Path(args.report_dir) / 'export.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
