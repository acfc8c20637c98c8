"""Export one model of a run: every variant written, validated against PyTorch, scored, timed.

The model's directory `<run>/onnx/<model>/` is built in a temporary sibling and swapped in whole
(distill.atomic.directory), so a failed or interrupted export leaves the previous one in place.
Intermediates that were not asked for (the fp32 graph under an int8-only export, the int8
attempts that lost) live in a scratch folder that is deleted before the swap.

ONNX Runtime variants (fp32, fp32-optimized, int8, fp16) and OpenVINO ones (openvino, openvino-int8:
export/openvino_ir.py) pass the same gates and are served by the same prediction API; the CPU
variant to recommend is then chosen from their interleaved timings (export/recommend.py).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from distill import atomic
from distill.errors import DistillError
from distill.labels import LabelSet, check_model_labels
from distill.models import config_labels, load_bundle
from distill.predict import (
    Backend,
    OrtBackend,
    OvBackend,
    TorchBackend,
    cpu_providers,
    cuda_usable,
    select_inputs,
)
from distill.predict.onnx_runtime import cuda_problem
from distill.predict.openvino_runtime import IR_FILE, reason
from export import openvino_ir, validate
from export.convert import MODEL_FILE, copy_preprocessing_files, describe, export_fp32
from export.fp16 import to_fp16
from export.isa import describe as describe_isa
from export.isa import this_cpu
from export.optimize import optimize
from export.quantize import ATTEMPTS, AttemptResult, choose, quantize, skip_reason
from export.recommend import CPU_ORDER, recommend
from export.timing import ROUNDS, interleaved, margin

VARIANTS = ("fp32", "fp32-optimized", "int8", "fp16", "openvino", "openvino-int8")
ONNX_DIR = "onnx"


def rung_error(err: DistillError, folder: Path) -> str:
    """A rung's error as the manifest keeps it: a file in the rung's scratch folder (gone once the export
    ends, and a path of this machine) named by its file name only."""
    if err.path is not None and (err.path == folder or folder in err.path.parents):
        return f"{err.path.relative_to(folder)}: {err.message}"
    return str(err)


class NotBuilt(DistillError):
    """A variant none of whose rungs could be built: the model's other variants are still exported."""

    def __init__(self, message: str, attempts: list[dict[str, Any]]) -> None:
        super().__init__(message)
        self.attempts = attempts


@dataclass
class ExportOptions:
    variants: Sequence[str] = VARIANTS
    int8_budget: float = 1.0  # F1 points an int8 variant may lose against PyTorch fp32
    int8_attempts: Sequence[str] = tuple(ATTEMPTS)
    openvino_attempts: Sequence[str] = tuple(openvino_ir.ATTEMPTS)
    atol: float | None = None  # fp32 parity bound; None: validate.tolerance_for(model)
    batch_size: int = 8
    parity_windows: int = 64
    calibration_windows: int = 64
    latency_repeats: int = 10
    opset: int | None = None


@dataclass
class EvalData:
    """The run's forms as plain dicts (tokens, bboxes, image, ner_tags), decoded once for every model.

    `gate_forms` are perturbed copies of training forms held out of calibration: the int8 and fp16
    gates choose on them, so the test split is scored once, for the variant kept, and never picks.
    """

    test_forms: list[dict[str, Any]]
    train_forms: list[dict[str, Any]]
    max_length: int
    stride: int
    split: str = (
        "test"  # "test", or "held-out" for a --holdout-forms run (its scored forms are training forms)
    )
    gate_forms: list[dict[str, Any]] = field(default_factory=list)
    gate_source: str = ""  # what the gate forms are, e.g. "perturbed copies of 16 training forms ..."
    labels: LabelSet | None = None  # the run's labels (None: the model's own id2label)
    # Accuracy control's validation forms: perturbed copies of calibration forms (never gate or scored forms).
    validation_forms: list[dict[str, Any]] = field(default_factory=list)
    split_text: str = ""  # the scored forms in words ("the test split", "30 held-out training forms ...")

    @property
    def scored(self) -> str:
        """The forms every variant is scored on, in words (one wording for the manifest and the report)."""
        return self.split_text or f"the {self.split} split"

    @property
    def gate_split(self) -> str:
        """The gate's forms in words, for the manifest and the report (one wording for both)."""
        if self.gate_forms:
            return f"{len(self.gate_forms)} {self.gate_source}"
        return f"{self.scored} (no training forms to hold out)"


def file_size(variant_dir: Path) -> int:
    """Bytes of the model: the ONNX graph and any external-data files beside it, or the OpenVINO IR."""
    return sum(
        p.stat().st_size
        for p in variant_dir.iterdir()
        if p.suffix in (".onnx", ".onnx_data", ".data", ".xml", ".bin") and p.name != "training_args.bin"
    )


def loads_on_cpu(path: Path) -> bool | str:
    """True when a CPU session loads the graph (a GPU-only graph would not): else onnxruntime's reason."""
    try:
        OrtBackend(path, providers=cpu_providers())
    except DistillError as err:
        return str(err)
    return True


class ModelExport:
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

    def export(self) -> dict[str, Any]:
        """Build every requested variant into <run>/onnx/<model>/ (atomically); returns the manifest entry."""
        wanted = [v for v in VARIANTS if v in self.options.variants]
        entry: dict[str, Any] = {
            "source": str(self.model_dir.relative_to(self.run)),
            "pytorch": self.pytorch_figures(),
        }
        variants: dict[str, dict[str, Any]] = {}
        target = self.run / ONNX_DIR / self.name
        with atomic.directory(target) as tmp:
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
                            entry["not_built"] = {
                                "openvino-int8": {"error": str(err), "attempts": err.attempts}
                            }
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

    def int8(self, fp32_dir: Path, opt_dir: Path, out_dir: Path, scratch: Path) -> dict[str, Any]:
        """Run the quantisation ladder through the gate; time the passing rungs interleaved; keep the
        plain recipe unless another is faster beyond the noise; score the kept one on the scored split."""
        started = time.perf_counter()
        isa = this_cpu()
        input_names = OrtBackend(fp32_dir / MODEL_FILE).input_names
        results: list[AttemptResult] = []
        built: dict[str, Path] = {}
        backends: dict[str, OrtBackend] = {}
        gate_words: dict[str, list[np.ndarray]] = {}
        for name in self.options.int8_attempts:
            attempt = ATTEMPTS[name]
            result = AttemptResult(name, attempt.description, attempt.settings())
            reason = skip_reason(attempt, isa)
            if reason:
                result.error = reason
                results.append(result)
                continue
            folder = scratch / f"int8-{name}"
            folder.mkdir()
            try:
                result.details = quantize(
                    attempt,
                    opt_dir / MODEL_FILE,
                    fp32_dir / MODEL_FILE,
                    folder / MODEL_FILE,
                    calibration=lambda names=input_names: self.calibration_feeds(names),
                )
                backend = OrtBackend(folder / MODEL_FILE)
                verdict, words = self.gate_with_words(
                    backend, f"int8 {name}", self.options.int8_budget, validate.INT8_AGREEMENT_FLOOR
                )
            except DistillError as err:
                result.error = rung_error(err, folder)
            except Exception as err:  # a rung that onnxruntime cannot build or run is recorded, not fatal
                result.error = f"{err.__class__.__name__}: {str(err).splitlines()[0] if str(err) else ''}"
            else:
                result.f1 = verdict["f1"]
                result.delta_f1_points = verdict["delta_f1_points"]
                result.size_bytes = file_size(folder)
                result.meets_budget = verdict["passes"]
                result.details["gate"] = verdict
                built[name], backends[name], gate_words[name] = folder, backend, words
            results.append(result)
        scored = [r for r in results if r.f1 is not None]
        if not scored:
            raise DistillError(
                f"{self.name}: every int8 attempt failed: "
                + "; ".join(f"{r.name}: {r.error}" for r in results)
            )
        # Timed against each other in the same rounds: the choice must survive the machine's noise.
        timed = [r for r in scored if r.meets_budget] or scored
        batch = self.batches[0]
        stats, others = interleaved({r.name: (lambda b=backends[r.name]: b(batch)) for r in timed})
        for r in timed:
            r.latency_ms = stats[r.name]["median_ms"]
            r.details["timing"] = stats[r.name]
        needed = margin(stats, others)
        chosen = choose(results, needed)
        if chosen is None:
            # Nothing passed the gate: still ship the most accurate attempt, flagged, so the bench
            # can show what int8 costs; the recommendation stays with fp32.
            chosen = max(scored, key=lambda r: (r.f1, r.details["gate"]["word_agreement"]))
        shutil.copytree(built[chosen.name], out_dir)
        copy_preprocessing_files(fp32_dir, out_dir)
        # The scored split, once, for the variant kept (the gate chose on held-out training forms).
        figures = self.measure(out_dir / MODEL_FILE, "int8", time_it=False)
        figures["latency_ms"] = chosen.latency_ms
        figures["batch_sensitivity"] = self.batch_sensitivity(backends[chosen.name], gate_words[chosen.name])
        if chosen.meets_budget:
            self.keep_cpu("int8", figures, backends[chosen.name])  # the same graph as the file kept
        return {
            "method": chosen.name,
            "description": chosen.description,
            "meets_budget": chosen.meets_budget,
            "meets_gate": chosen.meets_budget,
            "budget_f1_points": self.options.int8_budget,
            "isa": isa,
            "isa_name": describe_isa(isa),
            "gate": chosen.details["gate"],
            "choice": {
                "rule": "the plain recipe (first rung through the gate) unless another is faster by more than the margin",
                "margin": round(needed, 4),
                "other_processes_cores": round(others, 3),
                "rounds": ROUNDS,
                "batch": f"{len(batch['input_ids'])} x {batch['input_ids'].shape[1]} tokens",
            },
            "export_seconds": round(time.perf_counter() - started, 3),
            **figures,
            "attempts": [vars(r) for r in results],
        }

    def calibration_feeds(self, input_names: Sequence[str]) -> list[dict[str, np.ndarray]]:
        """Training windows, one per batch (no padding in the ranges), as the ONNX model's inputs."""
        windows = validate.parity_windows(
            self.encoder, self.data.train_forms, self.options.calibration_windows
        )
        if not windows:
            raise DistillError("the train split has no forms to calibrate static quantisation on", self.run)
        feeds = []
        for window in windows:
            batch = {k: v[None] for k, v in window.items()}
            feeds.append({k: np.ascontiguousarray(v) for k, v in select_inputs(batch, input_names).items()})
        return feeds

    def fp16(self, fp32_dir: Path, out_dir: Path, scratch: Path) -> dict[str, Any]:
        """fp16 from a GPU-optimised graph, gated like int8 and scored on the GPU where there is one."""
        out_dir.mkdir(parents=True)
        on_gpu = cuda_usable()
        gpu_graph = scratch / "fp16-source" / MODEL_FILE
        gpu_graph.parent.mkdir()
        _, optimise_s = optimize(fp32_dir / MODEL_FILE, gpu_graph, self.bundle.model.config, use_gpu=True)
        seconds = optimise_s + to_fp16(gpu_graph, out_dir / MODEL_FILE)
        copy_preprocessing_files(fp32_dir, out_dir)
        figures: dict[str, Any] = {
            "export_seconds": round(seconds, 3),
            "size_bytes": file_size(out_dir),
            "built_from": "the fp32 export through onnxruntime's transformer optimiser for GPU (use_gpu=True, "
            "Python fusions only: opt_level 0), then float16 with fp32 inputs and logits (keep_io_types)",
            "loads_on_cpu": loads_on_cpu(out_dir / MODEL_FILE),
        }
        providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if on_gpu else cpu_providers()
        try:
            figures.update(self.measure(out_dir / MODEL_FILE, "fp16", providers=providers, time_it=on_gpu))
            figures["gate"] = self.gate(
                OrtBackend(out_dir / MODEL_FILE, providers=providers),
                "fp16",
                validate.FP16_BUDGET_POINTS,
                validate.FP16_AGREEMENT_FLOOR,
            )
        except Exception as err:  # onnxruntime without fp16 kernels for an op on this provider
            figures.update(
                scored=False,
                meets_gate=False,
                not_scored_reason=f"onnxruntime could not run it here: {str(err).splitlines()[0][:300]}",
            )
            return figures
        figures["scored"] = True
        figures["meets_gate"] = figures["gate"]["passes"]
        # onnxruntime falls back to the CPU silently when the CUDA provider cannot start.
        if figures["providers"][0] == "CUDAExecutionProvider":
            figures["scored_on"] = "CUDA"
        else:
            figures["scored_on"] = "CPU"
            figures["latency_ms"] = None
            figures["note"] = (
                f"no usable CUDA provider here ({cuda_problem() or 'the session fell back to the CPU'}): "
                "scored on the CPU, where onnxruntime runs the fp16 graph through casts to fp32 for the "
                "kernels it lacks; accuracy is representative, latency is not (not timed)"
            )
        return figures

    # --- OpenVINO ---------------------------------------------------------------------------

    def openvino(self, fp32_dir: Path, out_dir: Path) -> dict[str, Any]:
        """The fp32 ONNX as OpenVINO IR, compiled at the CPU's default precision and gated like int8."""
        seconds = openvino_ir.convert(fp32_dir / MODEL_FILE, out_dir)
        copy_preprocessing_files(fp32_dir, out_dir)
        backend = OvBackend(out_dir / IR_FILE)
        figures: dict[str, Any] = {
            "export_seconds": round(seconds, 3),
            "runtime": "openvino",
            "inference_precision": backend.precision,  # the CPU plugin's default here: bf16 where native
            "built_from": "openvino.convert_model of the fp32 ONNX export, fp32 weights; compiled at the CPU's "
            "default inference precision",
        }
        figures.update(self.measure_backend(backend, out_dir, "openvino"))
        verdict, words = self.gate_with_words(
            backend, "openvino", self.options.int8_budget, validate.INT8_AGREEMENT_FLOOR
        )
        figures.update(gate=verdict, meets_gate=verdict["passes"])
        figures["batch_sensitivity"] = self.batch_sensitivity(backend, words)
        if verdict["passes"]:
            self.keep_cpu("openvino", figures, backend)
        return figures

    def openvino_int8(self, fp32_dir: Path, fp32_ir: Path, out_dir: Path, scratch: Path) -> dict[str, Any]:
        """NNCF's ladder through the gate, stopping at the first rung that passes; the kept rung scored once."""
        import openvino as ov

        started = time.perf_counter()
        input_names = [port.get_any_name() for port in ov.Core().read_model(str(fp32_ir)).inputs]
        calibration = self.calibration_feeds(input_names)
        results: list[AttemptResult] = []
        built: dict[str, tuple[Path, OvBackend, list[np.ndarray]]] = {}
        for name in self.options.openvino_attempts:
            attempt = openvino_ir.ATTEMPTS[name]
            result = AttemptResult(name, attempt.description, attempt.settings())
            folder = scratch / f"openvino-int8-{name}"
            try:
                validation = (
                    self.accuracy_control_validation(input_names) if attempt.accuracy_control else None
                )
                result.details = openvino_ir.quantize(attempt, fp32_ir, folder, calibration, validation)
                backend = OvBackend(folder / IR_FILE)
                verdict, words = self.gate_with_words(
                    backend, f"openvino-int8 {name}", self.options.int8_budget, validate.INT8_AGREEMENT_FLOOR
                )
            except DistillError as err:
                result.error = rung_error(err, folder)
            except Exception as err:  # a rung NNCF or OpenVINO cannot build or run is recorded, not fatal
                result.error = f"{err.__class__.__name__}: {reason(err)}"  # the cause, not OpenVINO's trace
            else:
                result.f1 = verdict["f1"]
                result.delta_f1_points = verdict["delta_f1_points"]
                result.size_bytes = file_size(folder)
                result.meets_budget = verdict["passes"]
                result.details["gate"] = verdict
                built[name] = (folder, backend, words)
            results.append(result)
            if result.meets_budget:
                break  # NNCF's rungs cost calibration passes: the first through the gate is kept
        scored = [r for r in results if r.f1 is not None]
        if not scored:
            raise NotBuilt(
                f"{self.name}: every OpenVINO int8 attempt failed: "
                + "; ".join(f"{r.name}: {r.error}" for r in results),
                [vars(r) for r in results],
            )
        passing = [r for r in scored if r.meets_budget]
        chosen = (
            passing[0] if passing else max(scored, key=lambda r: (r.f1, r.details["gate"]["word_agreement"]))
        )
        folder, kept, words = built[chosen.name]
        shutil.copytree(folder, out_dir)  # the same IR the rung's backend compiled: no second compile
        copy_preprocessing_files(fp32_dir, out_dir)
        figures = self.measure_backend(kept, out_dir, "openvino-int8")  # the scored split, once
        figures["batch_sensitivity"] = self.batch_sensitivity(kept, words)
        if chosen.meets_budget:
            self.keep_cpu("openvino-int8", figures, kept)
        return {
            "method": chosen.name,
            "description": chosen.description,
            "runtime": "openvino",
            "inference_precision": kept.precision,  # of the layers NNCF left in floating point
            "meets_gate": chosen.meets_budget,
            "budget_f1_points": self.options.int8_budget,
            "gate": chosen.details["gate"],
            "calibration": f"{len(calibration)} training windows (never a gate or scored form)",
            "export_seconds": round(time.perf_counter() - started, 3),
            **figures,
            "attempts": [vars(r) for r in results],
        }

    def accuracy_control_validation(self, input_names: Sequence[str]) -> openvino_ir.Validation:
        """What NNCF's accuracy control validates on: perturbed copies of calibration forms, scored by F1
        through the same word merge (never the gate's forms, which judge the result, nor the scored ones)."""
        forms = self.data.validation_forms
        if not forms:
            raise DistillError("no training forms to validate accuracy control on", self.run)

        def metric(compiled: Any, items: Sequence[dict[str, Any]]) -> float:
            backend = OvBackend.from_compiled(compiled)
            logits = validate.word_logits(self.encoder, backend, items, self.options.batch_size)
            return float(validate.score_logits(items, logits, self.labels)["f1"])

        def transform(form: dict[str, Any]) -> dict[str, np.ndarray]:
            window = self.encoder.encode_form(form["tokens"], form.get("bboxes"), form.get("image"))[0]
            return select_inputs({k: v[None] for k, v in window.items()}, input_names)

        return openvino_ir.Validation(forms, metric, self.options.int8_budget / 100.0, transform)
