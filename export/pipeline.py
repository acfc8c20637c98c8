"""Export one model of a run: every variant written, validated against PyTorch, scored, timed.

The model's directory is built under the export's staging copy of `<run>/onnx/`, which export/onnx.py
swaps in whole with its manifest (distill.atomic.directory), so a failed or interrupted export leaves
the previous one in place. Intermediates that were not asked for (the fused graph under an int8-only
export, the int8 attempts that lost) live in a scratch folder that is deleted before the swap. A
reduced-precision variant asked for alone keeps fp32 beside it: the recommendation holds it against
fp32, and a fallback names a file on disk.

ONNX Runtime variants (fp32, fp32-optimized, int8, fp16) and OpenVINO ones (openvino, openvino-int8:
export/openvino_ir.py) pass the same gates and are served by the same prediction API; the CPU
variant to recommend is then chosen from their interleaved timings (export/recommend.py).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from distill.errors import DistillError
from distill.labels import check_model_labels
from distill.models import config_labels, load_bundle
from distill.predict import (
    Backend,
    OrtBackend,
    TorchBackend,
)
from distill.predict.openvino_runtime import IR_FILE
from export import validate
from export.builds import VariantBuilds
from export.convert import MODEL_FILE, copy_preprocessing_files, describe, export_fp32
from export.export_types import ONNX_DIR, VARIANTS, EvalData, ExportOptions, NotBuilt, file_size
from export.optimize import optimize
from export.recommend import CPU_ORDER, FULL_PRECISION, recommend
from export.timing import interleaved, margin


class ModelExport(VariantBuilds):
    """The state shared by the variants of one model: its PyTorch reference and evaluation windows."""

    def __init__(self, name: str, model_dir: Path, run: Path, data: EvalData, options: ExportOptions) -> None:
        self.name = name
        self.model_dir = model_dir
        self.run = run
        self.data = data
        self.options = options
        self.bundle = load_bundle(model_dir)
        self.labels = data.labels or config_labels(self.bundle.model.config)
        check_model_labels(self.bundle.model.config.id2label, self.labels, model_dir)
        self.encoder = self.bundle.encoder(data.max_length, data.stride)
        self.pad_id = self.bundle.tokenizer.pad_token_id or 0
        self.tolerance = options.atol if options.atol is not None else validate.tolerance_for(name)
        self.windows = validate.parity_windows(self.encoder, data.test_forms, options.parity_windows)
        if not self.windows:
            raise DistillError(f"{data.scored} has no forms to validate on", run)
        self.batches = validate.batches_of(self.windows, options.batch_size, self.pad_id)
        self.torch = TorchBackend(self.bundle.model)
        self.reference = validate.run(self.torch, self.batches)
        # The gate's forms: perturbed held-out training forms; the scored split only where the run has none to spare.
        self.gate_forms = data.gate_forms or data.test_forms
        self.gate_split = data.gate_split
        self.cpu_backends: dict[
            str, Backend
        ] = {}  # the CPU variants kept, for the timing the choice is made on

    # --- figures -------------------------------------------------------------------------

    def word_logits(self, backend: Backend, forms: Sequence[dict[str, Any]], label: str) -> list[np.ndarray]:
        return validate.word_logits(
            self.encoder, backend, forms, self.options.batch_size, f"{self.name} {label}"
        )

    def pytorch_figures(self) -> dict[str, Any]:
        # PyTorch fp32's word logits on the scored and the gate forms: every variant is held against them.
        self.test_words = self.word_logits(self.torch, self.data.test_forms, "pytorch F1")
        metrics = validate.score_logits(self.data.test_forms, self.test_words, self.labels)
        self.pytorch_f1 = metrics["f1"]
        self.gate_words = self.word_logits(self.torch, self.gate_forms, "pytorch gate F1")
        self.pytorch_gate_f1 = validate.score_logits(self.gate_forms, self.gate_words, self.labels)["f1"]
        return {
            "gate_f1": self.pytorch_gate_f1,
            "model_type": self.bundle.model_type,
            "parameters": int(sum(p.numel() for p in self.bundle.model.parameters())),
            "f1": metrics["f1"],
            "metrics": metrics,
            "latency_ms": validate.latency_ms(
                self.torch, self.batches[0], repeats=self.options.latency_repeats
            ),
        }

    def measure(
        self,
        path: Path,
        label: str,
        tolerance: float | None = None,
        providers: Sequence[str] | None = None,
        time_it: bool = True,
    ) -> dict[str, Any]:
        """Load `path` in onnxruntime and measure parity, F1 and latency against the PyTorch model."""
        return self.measure_backend(
            OrtBackend(path, providers=providers), path.parent, label, tolerance, time_it
        )

    def measure_backend(
        self, backend: Backend, folder: Path, label: str, tolerance: float | None = None, time_it: bool = True
    ) -> dict[str, Any]:
        """Parity (logits on the scored windows), F1 and word agreement on the scored forms, latency."""
        parity = validate.compare(
            self.reference, validate.run(backend, self.batches), self.batches, tolerance
        )
        words = self.word_logits(backend, self.data.test_forms, f"{label} F1")
        metrics = validate.score_logits(self.data.test_forms, words, self.labels)
        agreement, counted = validate.word_agreement(self.test_words, words)
        return {
            "size_bytes": file_size(folder),
            "parity": parity.as_dict(),
            "f1": metrics["f1"],
            "delta_f1_points": round((metrics["f1"] - self.pytorch_f1) * 100.0, 4),
            "word_agreement": agreement,  # word labels as PyTorch fp32's, on the scored forms
            "words": counted,
            "latency_ms": validate.latency_ms(backend, self.batches[0], repeats=self.options.latency_repeats)
            if time_it
            else None,
            "providers": list(getattr(backend, "providers", [])),
            "metrics": metrics,
        }

    def gate_with_words(
        self, backend: Backend, label: str, budget_points: float, agreement_floor: float
    ) -> tuple[dict[str, Any], list[np.ndarray]]:
        """The accuracy gate on the held-out gate forms (F1 budget, word agreement floor, no collapse),
        and the candidate's word logits there (the batch-sensitivity check reuses them)."""
        words = self.word_logits(backend, self.gate_forms, f"{label} gate F1")
        f1 = validate.score_logits(self.gate_forms, words, self.labels)["f1"]
        agreement, counted = validate.word_agreement(self.gate_words, words)
        collapsed = validate.collapse_reason(self.gate_words, words)
        verdict = validate.gate(
            f1, self.pytorch_gate_f1, agreement, collapsed, budget_points, agreement_floor, counted
        )
        return {"split": self.gate_split, "forms": len(self.gate_forms), **verdict}, words

    def gate(
        self, backend: Backend, label: str, budget_points: float, agreement_floor: float
    ) -> dict[str, Any]:
        return self.gate_with_words(backend, label, budget_points, agreement_floor)[0]

    def batch_sensitivity(self, backend: Backend, batched: list[np.ndarray] | None = None) -> dict[str, Any]:
        """Word labels on the gate forms one window at a time against the export's batch."""
        if batched is None:
            batched = validate.word_logits(self.encoder, backend, self.gate_forms, self.options.batch_size)
        found = validate.batch_sensitivity(
            self.encoder, backend, self.gate_forms, batched, self.options.batch_size
        )
        return {"split": self.gate_split, **found}

    def timing_shapes(self) -> dict[str, dict[str, np.ndarray]]:
        """The shapes the CPU choice is timed at: the export's batch of scored windows, and one window alone."""
        batch, single = self.batches[0], validate.batches_of(self.windows[:1], 1, self.pad_id)[0]

        def text(b: dict[str, np.ndarray]) -> str:
            return f"{len(b['input_ids'])} x {b['input_ids'].shape[1]}"

        return {text(batch): batch, text(single): single}

    def time_cpu_variants(self, variants: dict[str, dict[str, Any]]) -> None:
        """Interleaved rounds over every CPU variant kept, at each timing shape; each figure's latency
        becomes its median at the export's batch, with the medians per shape and the noise margin."""
        names = [n for n in CPU_ORDER if n in variants and n in self.cpu_backends]
        if not names:
            return
        shapes = self.timing_shapes()
        found: dict[str, dict[str, dict[str, float]]] = {name: {} for name in names}
        needed = 0.0
        others_seen = 0.0
        for shape, batch in shapes.items():
            calls = {name: (lambda b=self.cpu_backends[name], x=batch: b(x)) for name in names}
            stats, others = interleaved(calls, settle=1)  # two runtimes: see interleaved's `settle`
            needed = max(needed, margin(stats, others))
            others_seen = max(others_seen, others)
            for name in names:
                found[name][shape] = stats[name]
        first = next(iter(shapes))
        for name in names:
            variants[name]["latency_ms"] = found[name][first]["median_ms"]
            variants[name]["timing"] = {
                **found[name][first],
                "shapes": found[name],
                "margin": round(needed, 4),
                "other_processes_cores": round(others_seen, 3),
                "interleaved_with": names,
            }

    def check_parity(self, variant: str, figures: dict[str, Any]) -> None:
        parity = figures["parity"]
        if not parity["within_tolerance"]:
            raise DistillError(
                f"{self.name} {variant}: max |logit difference| against PyTorch is {parity['max_abs_diff']:.3g}, "
                f"beyond the tolerance {parity['tolerance']:.3g} (mean {parity['mean_abs_diff']:.3g}, "
                f"argmax agreement {parity['argmax_agreement']:.2%} over {parity['tokens']} tokens of "
                f"{parity['windows']} windows); the export was not written. If the difference is expected, "
                "pass a measured bound with --atol.",
                self.model_dir,
            )

    # --- variants --------------------------------------------------------------------------

    def export(self, tmp: Path) -> dict[str, Any]:
        """Build every requested variant into `tmp` (the model's folder in the export's staging copy of
        <run>/onnx/, swapped in by the caller); returns the manifest entry."""
        wanted, reference = wanted_variants(self.options.variants)
        entry: dict[str, Any] = {
            "source": str(self.model_dir.relative_to(self.run)),
            "pytorch": self.pytorch_figures(),
        }
        if reference:
            entry["kept_as_reference"] = reference
        variants: dict[str, dict[str, Any]] = {}
        tmp.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(dir=tmp, prefix=".scratch-"))
        try:

            def place(variant: str) -> Path:
                """Where a variant is built: its final folder if asked for, else scratch."""
                folder = (tmp if variant in wanted else scratch) / variant
                folder.mkdir(parents=True, exist_ok=True)
                return folder

            steps = tqdm(total=len(wanted), desc=f"{self.name} variants", leave=False)
            fp32_dir = place("fp32")
            seconds = export_fp32(self.bundle.model, self.model_dir, fp32_dir, self.options.opset)
            fp32 = {"export_seconds": round(seconds, 3), **describe(fp32_dir / MODEL_FILE)}
            fp32_backend = OrtBackend(fp32_dir / MODEL_FILE)
            fp32.update(self.measure_backend(fp32_backend, fp32_dir, "fp32", self.tolerance))
            self.check_parity("fp32", fp32)
            if "fp32" in wanted:
                variants["fp32"] = fp32
                self.keep_cpu("fp32", fp32, fp32_backend)
                steps.update()

            if any(v in wanted for v in ("fp32-optimized", "int8", "fp16")):
                opt_dir = place("fp32-optimized")
                fused, seconds = optimize(
                    fp32_dir / MODEL_FILE, opt_dir / MODEL_FILE, self.bundle.model.config
                )
                copy_preprocessing_files(fp32_dir, opt_dir)
                opt = {"export_seconds": round(seconds, 3), "fusions": fused}
                opt_backend = OrtBackend(opt_dir / MODEL_FILE)
                opt.update(self.measure_backend(opt_backend, opt_dir, "fp32-optimized", self.tolerance))
                self.check_parity("fp32-optimized", opt)
                if "fp32-optimized" in wanted:
                    variants["fp32-optimized"] = opt
                    self.keep_cpu("fp32-optimized", opt, opt_backend)
                    steps.update()

            if "int8" in wanted:
                variants["int8"] = self.int8(fp32_dir, opt_dir, tmp / "int8", scratch)
                steps.update()

            if "fp16" in wanted:
                variants["fp16"] = self.fp16(fp32_dir, tmp / "fp16", scratch)
                steps.update()

            if any(v in wanted for v in ("openvino", "openvino-int8")):
                ov_dir = place("openvino")
                variants_ov = self.openvino(fp32_dir, ov_dir)
                if "openvino" in wanted:
                    variants["openvino"] = variants_ov
                    steps.update()
                if "openvino-int8" in wanted:
                    try:
                        variants["openvino-int8"] = self.openvino_int8(
                            fp32_dir, ov_dir / IR_FILE, tmp / "openvino-int8", scratch
                        )
                    except NotBuilt as err:  # the other variants stand: recorded, not fatal
                        entry["not_built"] = {"openvino-int8": {"error": str(err), "attempts": err.attempts}}
                        tqdm.write(f"warning: {err}", file=sys.stderr)
                    steps.update()
            steps.close()
            # The CPU choice: every variant kept, timed against the others in the same rounds.
            self.time_cpu_variants(variants)
        finally:
            self.cpu_backends.clear()
            shutil.rmtree(scratch, ignore_errors=True)
        for variant, figures in variants.items():
            model_file = IR_FILE if variant.startswith("openvino") else MODEL_FILE
            figures["path"] = f"{ONNX_DIR}/{self.name}/{variant}/{model_file}"
        entry["variants"] = {v: variants[v] for v in wanted if v in variants}
        entry.update(recommend(variants, self.options.int8_budget))
        return entry

    def keep_cpu(self, variant: str, figures: dict[str, Any], backend: Backend) -> None:
        """A CPU variant kept: its batch sensitivity measured, its backend held for the timing."""
        if "batch_sensitivity" not in figures:
            figures["batch_sensitivity"] = self.batch_sensitivity(backend)
        self.cpu_backends[variant] = backend


def wanted_variants(asked: Sequence[str]) -> tuple[list[str], str | None]:
    """The variants to write, in VARIANTS order, and the full-precision one added unasked (or None).

    Reduced precision must beat full precision to be recommended (export/recommend.py), and a fallback
    must name a file that exists: asked without fp32 or fp32-optimized, a reduced variant keeps fp32,
    the graph it is built from and measured against."""
    wanted = [v for v in VARIANTS if v in asked]
    if any(v not in FULL_PRECISION for v in wanted) and not FULL_PRECISION & set(wanted):
        return ["fp32", *wanted], "fp32"
    return wanted, None
