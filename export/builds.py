"""How each reduced-precision and OpenVINO variant of a model is built and checked: int8 (its rungs),
fp16, OpenVINO IR and NNCF int8. A mixin of ModelExport (pipeline.py), which measures and gates them.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from distill.errors import DistillError
from distill.predict import (
    OrtBackend,
    OvBackend,
    cpu_providers,
    cuda_usable,
    select_inputs,
)
from distill.predict.onnx_runtime import cuda_problem
from distill.predict.openvino_runtime import IR_FILE, reason
from export import openvino_ir, validate
from export.convert import MODEL_FILE, copy_preprocessing_files
from export.export_types import NotBuilt, file_size, loads_on_cpu, rung_error
from export.fp16 import to_fp16
from export.isa import describe as describe_isa
from export.isa import this_cpu
from export.optimize import optimize
from export.quantize import ATTEMPTS, AttemptResult, choose, quantize, skip_reason
from export.timing import ROUNDS, interleaved, margin


class VariantBuilds:
    """The variant builders of ModelExport; they read its model, data, options and figures."""

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
