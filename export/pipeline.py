"""Export one model of a run: every variant written, validated against PyTorch, scored, timed.

The model's directory `<run>/onnx/<model>/` is built in a temporary sibling and swapped in whole
(distill.atomic.directory), so a failed or interrupted export leaves the previous one in place.
Intermediates that were not asked for (the fp32 graph under an int8-only export, the int8
attempts that lost) live in a scratch folder that is deleted before the swap.
"""

from __future__ import annotations

import shutil
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
from distill.predict import OrtBackend, TorchBackend, cpu_providers, cuda_usable, select_inputs
from distill.predict.onnx_runtime import cuda_problem
from export import validate
from export.convert import MODEL_FILE, copy_preprocessing_files, describe, export_fp32
from export.fp16 import to_fp16
from export.isa import describe as describe_isa
from export.isa import this_cpu
from export.optimize import optimize
from export.quantize import ATTEMPTS, AttemptResult, choose, quantize, skip_reason
from export.timing import LATENCY_TIE, ROUNDS, interleaved, margin

VARIANTS = ("fp32", "fp32-optimized", "int8", "fp16")
ONNX_DIR = "onnx"


@dataclass
class ExportOptions:
    variants: Sequence[str] = VARIANTS
    int8_budget: float = 1.0  # F1 points an int8 variant may lose against PyTorch fp32
    int8_attempts: Sequence[str] = tuple(ATTEMPTS)
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
    split: str = "test"
    gate_forms: list[dict[str, Any]] = field(default_factory=list)
    gate_source: str = ""  # what the gate forms are, e.g. "perturbed copies of 16 training forms ..."
    labels: LabelSet | None = None  # the run's labels (None: the model's own id2label)

    @property
    def gate_split(self) -> str:
        """The gate's forms in words, for the manifest and the report (one wording for both)."""
        if self.gate_forms:
            return f"{len(self.gate_forms)} {self.gate_source}"
        return f"the {self.split} split (no training forms to hold out)"


def file_size(variant_dir: Path) -> int:
    """Bytes of the ONNX graph and any external-data files beside it."""
    return sum(
        p.stat().st_size for p in variant_dir.iterdir() if p.suffix in (".onnx", ".onnx_data", ".data")
    )


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
        windows = validate.parity_windows(self.encoder, data.test_forms, options.parity_windows)
        if not windows:
            raise DistillError(f"the {data.split} split has no forms to validate on", run)
        self.batches = validate.batches_of(windows, options.batch_size, self.pad_id)
        self.torch = TorchBackend(self.bundle.model)
        self.reference = validate.run(self.torch, self.batches)
        # The gate's forms: perturbed held-out training forms; the test split only where the run has none to spare.
        self.gate_forms = data.gate_forms or data.test_forms
        self.gate_split = data.gate_split
        gate_windows = validate.parity_windows(self.encoder, self.gate_forms, options.parity_windows)
        self.gate_batches = validate.batches_of(gate_windows, options.batch_size, self.pad_id)
        self.gate_reference = validate.run(self.torch, self.gate_batches)

    # --- figures -------------------------------------------------------------------------

    def pytorch_figures(self) -> dict[str, Any]:
        metrics = validate.score(
            self.encoder,
            self.torch,
            self.data.test_forms,
            self.options.batch_size,
            self.labels,
            f"{self.name} pytorch F1",
        )
        self.pytorch_f1 = metrics["f1"]
        self.pytorch_gate_f1 = validate.score(
            self.encoder,
            self.torch,
            self.gate_forms,
            self.options.batch_size,
            self.labels,
            f"{self.name} pytorch gate F1",
        )["f1"]
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
        backend = OrtBackend(path, providers=providers)
        parity = validate.compare(
            self.reference, validate.run(backend, self.batches), self.batches, tolerance
        )
        metrics = validate.score(
            self.encoder,
            backend,
            self.data.test_forms,
            self.options.batch_size,
            self.labels,
            f"{self.name} {label} F1",
        )
        return {
            "size_bytes": file_size(path.parent),
            "parity": parity.as_dict(),
            "f1": metrics["f1"],
            "delta_f1_points": round((metrics["f1"] - self.pytorch_f1) * 100.0, 4),
            "latency_ms": validate.latency_ms(backend, self.batches[0], repeats=self.options.latency_repeats)
            if time_it
            else None,
            "providers": backend.providers,
            "metrics": metrics,
        }

    def gate(
        self, backend: OrtBackend, label: str, budget_points: float, agreement_floor: float
    ) -> dict[str, Any]:
        """The accuracy gate on the held-out gate forms: F1 budget, argmax agreement floor, no collapse."""
        candidate = validate.run(backend, self.gate_batches)
        parity = validate.compare(self.gate_reference, candidate, self.gate_batches)
        collapsed = validate.collapse_reason(self.gate_reference, candidate, self.gate_batches)
        f1 = validate.score(
            self.encoder,
            backend,
            self.gate_forms,
            self.options.batch_size,
            self.labels,
            f"{self.name} {label} gate F1",
        )["f1"]
        verdict = validate.gate(f1, self.pytorch_gate_f1, parity, collapsed, budget_points, agreement_floor)
        return {"split": self.gate_split, "forms": len(self.gate_forms), **verdict}

    def time_together(self, candidates: dict[str, tuple[Path, dict[str, Any]]]) -> None:
        """Interleaved rounds over the candidates; each figure's latency becomes its median, with the margin."""
        backends = {name: OrtBackend(folder / MODEL_FILE) for name, (folder, _) in candidates.items()}
        batch = self.batches[0]
        stats, others = interleaved({name: (lambda b=b: b(batch)) for name, b in backends.items()})
        needed = margin(stats, others)
        for name, (_, figures) in candidates.items():
            figures["latency_ms"] = stats[name]["median_ms"]
            figures["timing"] = {
                **stats[name],
                "margin": round(needed, 4),
                "other_processes_cores": round(others, 3),
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
                fp32.update(self.measure(fp32_dir / MODEL_FILE, "fp32", self.tolerance))
                self.check_parity("fp32", fp32)
                if "fp32" in wanted:
                    variants["fp32"] = fp32
                    steps.update()

                if any(v in wanted for v in ("fp32-optimized", "int8", "fp16")):
                    opt_dir = place("fp32-optimized")
                    fused, seconds = optimize(
                        fp32_dir / MODEL_FILE, opt_dir / MODEL_FILE, self.bundle.model.config
                    )
                    copy_preprocessing_files(fp32_dir, opt_dir)
                    opt = {"export_seconds": round(seconds, 3), "fusions": fused}
                    opt.update(self.measure(opt_dir / MODEL_FILE, "fp32-optimized", self.tolerance))
                    self.check_parity("fp32-optimized", opt)
                    if "fp32-optimized" in wanted:
                        variants["fp32-optimized"] = opt
                        steps.update()
                    if "fp32" in wanted and "fp32-optimized" in wanted:
                        # The fp32 recommendation compares these two: time them against each other.
                        self.time_together({"fp32": (fp32_dir, fp32), "fp32-optimized": (opt_dir, opt)})

                if "int8" in wanted:
                    variants["int8"] = self.int8(fp32_dir, opt_dir, tmp / "int8", scratch)
                    steps.update()

                if "fp16" in wanted:
                    variants["fp16"] = self.fp16(fp32_dir, tmp / "fp16", scratch)
                    steps.update()
                steps.close()
            finally:
                shutil.rmtree(scratch, ignore_errors=True)
        for variant, figures in variants.items():
            figures["path"] = f"{ONNX_DIR}/{self.name}/{variant}/{MODEL_FILE}"
        entry["variants"] = {v: variants[v] for v in wanted}
        entry.update(recommend(variants, self.options.int8_budget))
        return entry

    def int8(self, fp32_dir: Path, opt_dir: Path, out_dir: Path, scratch: Path) -> dict[str, Any]:
        """Run the quantisation ladder through the gate; time the passing rungs interleaved; keep the
        plain recipe unless another is faster beyond the noise; score the kept one on the test split."""
        started = time.perf_counter()
        isa = this_cpu()
        input_names = OrtBackend(fp32_dir / MODEL_FILE).input_names
        results: list[AttemptResult] = []
        built: dict[str, Path] = {}
        backends: dict[str, OrtBackend] = {}
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
                verdict = self.gate(
                    backend, f"int8 {name}", self.options.int8_budget, validate.INT8_AGREEMENT_FLOOR
                )
            except DistillError as err:
                result.error = str(err)
            except Exception as err:  # a rung that onnxruntime cannot build or run is recorded, not fatal
                result.error = f"{err.__class__.__name__}: {str(err).splitlines()[0] if str(err) else ''}"
            else:
                result.f1 = verdict["f1"]
                result.delta_f1_points = verdict["delta_f1_points"]
                result.size_bytes = file_size(folder)
                result.meets_budget = verdict["passes"]
                result.details["gate"] = verdict
                built[name], backends[name] = folder, backend
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
            chosen = max(scored, key=lambda r: (r.f1, r.details["gate"]["argmax_agreement"]))
        shutil.copytree(built[chosen.name], out_dir)
        copy_preprocessing_files(fp32_dir, out_dir)
        # The test split, once, for the variant kept (the gate chose on held-out training forms).
        figures = self.measure(out_dir / MODEL_FILE, "int8", time_it=False)
        figures["latency_ms"] = chosen.latency_ms
        return {
            "method": chosen.name,
            "description": chosen.description,
            "meets_budget": chosen.meets_budget,
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


def loads_on_cpu(path: Path) -> bool | str:
    """True when a CPU session loads the graph (a GPU-only graph would not): else onnxruntime's reason."""
    try:
        OrtBackend(path, providers=cpu_providers())
    except DistillError as err:
        return str(err)
    return True


def recommend(variants: dict[str, dict[str, Any]], int8_budget: float) -> dict[str, Any]:
    """The variant to serve on a CPU (int8 within budget, else the faster fp32) and on a GPU."""
    int8 = variants.get("int8")
    fp32s = [v for v in ("fp32-optimized", "fp32") if v in variants]
    if int8 is not None and int8["meets_budget"]:
        cpu = "int8"
        gate = int8.get("gate") or {}
        why = f"{int8['method']}: passed the gate ({gate.get('delta_f1_points', float('nan')):+.2f} F1 points there)"
        test = int8["delta_f1_points"]
        # The gate decides; the scored split (test) is only reported, and said plainly when it disagrees.
        why += (
            f"; scored {test:+.2f} F1 points, within the budget of -{int8_budget}"
            if test >= -int8_budget
            else f"; scored {test:+.2f} F1 points, **beyond** the budget of -{int8_budget}"
        )
    elif fp32s:
        why = "no int8 attempt met the F1 budget" if int8 is not None else "int8 not exported"
        # The plain export unless the optimised graph is faster beyond the noise of their interleaved timing.
        cpu = fp32s[-1]
        if len(fp32s) == 2:
            opt, plain = variants["fp32-optimized"], variants["fp32"]
            needed = opt.get("timing", {}).get("margin", LATENCY_TIE)
            if opt["latency_ms"] < plain["latency_ms"] * (1.0 - needed):
                cpu = "fp32-optimized"
                why += f"; fp32-optimized is faster than fp32 beyond the {needed:.0%} noise margin"
            else:
                why += f"; fp32-optimized is not faster than fp32 beyond the {needed:.0%} noise margin"
        else:
            why += f"; {cpu} is the only fp32 variant exported"
    else:
        cpu, why = (
            ("int8", "the only CPU variant exported (outside the F1 budget)")
            if int8
            else (None, "no CPU variant exported")
        )
    fp16 = variants.get("fp16")
    if fp16 is not None and fp16.get("meets_gate", True):  # manifests from before the fp16 gate: no verdict
        gpu, gpu_why = "fp16", "fp16 passes its gate"
    else:
        gpu = "fp32-optimized" if "fp32-optimized" in variants else ("fp32" if "fp32" in variants else None)
        gpu_why = (
            "fp16 fails its gate: "
            + str((fp16.get("gate") or {}).get("why_not") or fp16.get("not_scored_reason"))
            if fp16 is not None
            else "fp16 not exported"
        )
    return {
        "recommended_cpu": cpu,
        "recommended_cpu_reason": why,
        "recommended_gpu": gpu,
        "recommended_gpu_reason": gpu_why,
    }
