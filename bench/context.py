"""One benchmark session over one run directory: its cases, and the loaded things they share.

Built once when pytest starts (the cases must be known to parametrise the tests); everything
heavy (models, the test split, the optimum reference model, memory probes) loads on first use.
"""

from __future__ import annotations

import functools
import os
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import pytest

from bench import memory
from bench.catalog import Catalog
from bench.contention import CpuShare
from bench.flops import Flops, batch_flops, max_text_length, visual_patches, widths
from bench.inputs import synthetic_batch
from bench.limits import Kernel, kernels, model_shapes
from bench.machine import MachineInfo, machine_info
from bench.quantised import NONE, QuantisedShare, file_share, ir_share
from bench.reference import quantize_with_openvino_defaults, quantize_with_optimum_defaults, same_model
from bench.runtimes import (
    BY_NAME,
    OV_REFERENCE,
    REFERENCE,
    RUNTIMES,
    VARIANT_RUNTIME,
    Runtime,
    Unavailable,
    check_available,
    onnx_backend,
    openvino_backend,
    torch_backend,
)
from distill.data.run_data import load_run_data, run_labels
from distill.labels import LabelSet
from distill.models import load_bundle, load_preprocessing
from distill.predict import Backend
from distill.windows import WindowEncoder

BATCH_SIZES = (1, 8)
SEQ_LENGTHS = (128, 512)
E2E_BATCH = 8  # windows per call in the end-to-end case, as the trainer scores
MEMORY_PROBES_AT_ONCE = 2
REFERENCE_SAMPLES = 300  # NNCF's default subset_size: what a user calibrating out of the box would pass
MODEL_FIELDS = ("input_ids", "attention_mask", "bbox", "pixel_values", "token_type_ids")


@dataclass(frozen=True)
class Case:
    kind: str  # latency | e2e
    model: str
    runtime: Runtime
    batch: int
    seq: int = 0  # latency: text tokens per sequence (capped at the model's limit)
    seq_requested: int = 0

    @property
    def id(self) -> str:
        if self.kind == "e2e":
            return f"{self.model}-{self.runtime.name}"
        return f"{self.model}-{self.runtime.name}-b{self.batch}-s{self.seq}"

    @property
    def group(self) -> str:
        return "end-to-end" if self.kind == "e2e" else f"latency batch {self.batch} seq {self.seq_requested}"


class ShapeRecorder:
    """A Backend that passes batches through and notes their shapes (to count the FLOPs of a pass)."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.input_names = backend.input_names
        self.shapes: list[tuple[int, int]] = []

    def __call__(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        self.shapes.append(tuple(batch["input_ids"].shape))  # type: ignore[arg-type]
        return self.backend(batch)

    def flops(self, config: Any) -> Flops:
        total = Flops(0, 0, 0, 0)
        for batch, length in self.shapes:
            total = total + batch_flops(config, batch, length)
        return total


class Bench:
    def __init__(
        self,
        run: Path,
        threads: int,
        work_dir: Path,
        memory_probes: bool = True,
        e2e_forms: int | None = None,
        memory_timeout: float = memory.TIMEOUT_S,
        stop_after: float | None = None,
        memory_stop_after: float | None = None,
    ) -> None:
        self.run = run
        self.threads = threads
        self.work_dir = work_dir
        self.memory_probes = memory_probes
        self.memory_timeout = memory_timeout
        self.started = time.monotonic()
        self.stop_after = stop_after  # seconds from the start: no case begins later (a time budget)
        self.memory_stop_after = memory_stop_after  # ... and no memory probe
        self.e2e_forms = e2e_forms  # None: the whole test split
        self.test_split_size = 0
        self.catalog = Catalog(run)
        self.skipped: list[dict[str, str]] = []
        self.results: list[Any] = []  # pytest-benchmark Metadata of every finished case
        self.notes: dict[str, str] = {}
        self._backends: OrderedDict[tuple[str, str], Backend] = OrderedDict()
        # Other processes competing for the cores make every figure slower and noisier: say how busy it was.
        self._cpu = CpuShare.start()
        self.contention: dict[str, float] = {}

    def past(self, seconds: float | None) -> bool:
        return seconds is not None and time.monotonic() - self.started > seconds

    def finish(self) -> None:
        self.contention = {
            "other_processes_cores": self._cpu.others_cores(),
            "load_average": os.getloadavg()[0],
        }

    @functools.cached_property
    def machine(self) -> MachineInfo:
        return machine_info(self.threads)

    # --- cases --------------------------------------------------------------------------------

    def runtimes_for(self, model: str) -> list[Runtime]:
        # The reference row is the one student a user would quantise: the run's `student`.
        return [r for r in RUNTIMES if not r.students_only or model == "student"]

    def latency_cases(self) -> list[Case]:
        cases = []
        for model, entry in self.catalog.models.items():
            limit = max_text_length(entry.config)
            for runtime in self.runtimes_for(model):
                for batch in BATCH_SIZES:
                    for seq in SEQ_LENGTHS:
                        cases.append(Case("latency", model, runtime, batch, min(seq, limit), seq))
        return cases

    def limit_kernels(self) -> list[Kernel]:
        """The limit probes: a large square GEMM, and every model's own GEMMs at the token counts timed."""
        shapes = []
        for entry in self.catalog.models.values():
            config = entry.config
            patches = visual_patches(config)
            tokens = min(max(SEQ_LENGTHS), max_text_length(config)) + (patches + 1 if patches else 0)
            hidden, ffn = widths(config)
            for batch in BATCH_SIZES:
                shapes += model_shapes(hidden, ffn, batch * tokens)
        return kernels(shapes, shapes)

    def quantised_share(self, model: str, runtime: Runtime) -> QuantisedShare:
        """What the row runs in int8, read from its ONNX graph or OpenVINO IR (none for float rows)."""
        if runtime.engine not in ("onnxruntime", "openvino") or runtime.limit != "int8":
            return NONE
        try:
            path = self.onnx_path(model, runtime)
        except Unavailable:
            return NONE
        return ir_share(path) if runtime.engine == "openvino" else file_share(path)

    def e2e_cases(self) -> list[Case]:
        return [Case("e2e", m, r, E2E_BATCH) for m in self.catalog.models for r in self.runtimes_for(m)]

    def open_case(self, benchmark: Any, case: Case) -> tuple[Any, Backend]:
        """Name the case's group and load its model entry and backend, or skip with the reason."""
        benchmark.group = case.group
        try:
            return self.catalog.models[case.model], self.backend(case.model, case.runtime)
        except Unavailable as reason:
            self.skip(case, str(reason))

    def skip(self, case: Case, reason: str) -> NoReturn:
        self.skip_row(case.model, case.runtime.label, case.id, reason)

    def skip_row(self, model: str, label: str, case_id: str, reason: str) -> NoReturn:
        """Skip the running test, and remember why for the report's "not run here" list."""
        self.skipped.append({"model": model, "label": label, "case": case_id, "reason": reason})
        pytest.skip(reason)

    # --- models -------------------------------------------------------------------------------

    def onnx_path(self, model: str, runtime: Runtime) -> Path:
        """The model file a row runs: an ONNX graph, or an OpenVINO IR (.xml) for OpenVINO rows."""
        if runtime.name == REFERENCE:
            return self.reference_path(model)
        if runtime.name == OV_REFERENCE:
            return self.openvino_reference_path(model)
        path = self.catalog.onnx_path(model, runtime.variant or "")
        if path is None:
            failed = self.catalog.not_built(model, runtime.variant or "")
            raise Unavailable(
                f"the export could not build {model}'s {runtime.variant}: {failed}"
                if failed
                else f"no {runtime.variant} ONNX export of {model}: run `python -m export.onnx --run-dir {self.run}`"
            )
        return path

    def reference_path(self, model: str) -> Path:
        fp32 = self.catalog.onnx_path(model, "fp32")
        if fp32 is None:
            raise Unavailable(
                f"the optimum reference quantises the fp32 export of {model}, and there is none"
            )
        return self._reference(model, fp32)

    @functools.cache  # noqa: B019 - one Bench per session: caching on self is what is wanted
    def _reference(self, model: str, fp32: Path) -> Path:
        path, recipe = quantize_with_optimum_defaults(
            fp32, self.work_dir / "optimum-reference" / model, self.machine.isa
        )
        self.notes["reference"] = recipe
        return path

    def openvino_reference_path(self, model: str) -> Path:
        fp32 = self.catalog.onnx_path(model, "fp32")
        if fp32 is None:
            raise Unavailable(
                f"the OpenVINO + NNCF reference quantises the fp32 export of {model}, and there is none"
            )
        return self._openvino_reference(model, fp32)

    @functools.cache  # noqa: B019 - one Bench per session
    def _openvino_reference(self, model: str, fp32: Path) -> Path:
        path, recipe = quantize_with_openvino_defaults(
            fp32, self.work_dir / "openvino-reference" / model, self.reference_samples(model)
        )
        self.notes["openvino_reference"] = recipe
        return path

    def reference_samples(self, model: str) -> list[dict[str, np.ndarray]]:
        """Calibration inputs a user would hand NNCF: training windows, one per sample, as the model's fields."""
        data = load_run_data(self.catalog.config)
        encoder = self.encoder(model)
        samples: list[dict[str, np.ndarray]] = []
        for form in data["train"]:
            for window in encoder.encode_form(form["tokens"], form.get("bboxes"), form.get("image")):
                samples.append({k: v[None] for k, v in window.items() if k in MODEL_FIELDS})
            if len(samples) >= REFERENCE_SAMPLES:
                break
        return samples[:REFERENCE_SAMPLES]

    def reference_is_ours(self, model: str) -> bool | None:
        """Whether the optimum reference and the model's int8 variant are the same model (None: not both built)."""
        if "reference" not in self.notes:
            return None
        ours = self.catalog.onnx_path(model, "int8")
        fp32 = self.catalog.onnx_path(model, "fp32")
        if ours is None or fp32 is None:
            return None
        return same_model(ours, self._reference(model, fp32))

    def recommended_runtime(self, model: str) -> Runtime | None:
        """The bench row that runs the CPU variant the export recommends for `model` (None: none recommended)."""
        variant = self.catalog.manifest.get("models", {}).get(model, {}).get("recommended_cpu")
        name = VARIANT_RUNTIME.get(variant or "")
        return BY_NAME[name] if name and model in self.catalog.models else None

    def default_threads_backend(self, model: str, runtime: Runtime) -> Backend:
        """The model in this runtime with the runtime's own thread default (the bench pins its rows)."""
        path = self.onnx_path(model, runtime)
        if runtime.engine == "openvino":
            from distill.predict import OvBackend

            return OvBackend(path)
        from distill.predict import OrtBackend

        return OrtBackend(path, providers=["CPUExecutionProvider"])

    def backend(self, model: str, runtime: Runtime) -> Backend:
        """The model in this runtime, ready to call; the last two stay loaded (cases run in model/runtime order)."""
        check_available(runtime)
        key = (model, runtime.name)
        if key in self._backends:
            self._backends.move_to_end(key)
            return self._backends[key]
        if runtime.engine == "torch":
            backend = torch_backend(load_bundle(self.catalog.models[model].path).model, runtime, self.threads)
        elif runtime.engine == "openvino":
            backend = openvino_backend(self.onnx_path(model, runtime), self.threads)
        else:
            # CUDA rows: one profiled call first, so a silent CPU fallback is refused, not timed.
            config = self.catalog.models[model].config
            probe = synthetic_batch(config, 1, min(16, max_text_length(config))) if runtime.is_cuda else None
            backend = onnx_backend(self.onnx_path(model, runtime), runtime, self.threads, probe=probe)
        self._backends[key] = backend
        while len(self._backends) > 2:
            self._backends.popitem(last=False)
        return backend

    @functools.cache  # noqa: B019
    def encoder(self, model: str) -> WindowEncoder:
        model_type, tokenizer, image_processor = load_preprocessing(self.catalog.models[model].path)
        config = self.catalog.config
        return WindowEncoder.for_model(
            model_type, tokenizer, image_processor, max_length=config.max_length, stride=config.stride
        )

    @functools.cached_property
    def test_forms(self) -> list[dict[str, Any]]:
        """The test split, each form a dict with its image decoded (reading PNGs is I/O, not preprocessing)."""
        data = load_run_data(self.catalog.config)
        split = data["test"]
        self.labels: LabelSet = run_labels(data)  # scores per type name the run's labels
        self.test_split_size = len(split)
        count = len(split) if self.e2e_forms is None else min(self.e2e_forms, len(split))
        return [split[i] for i in range(count)]

    def peak_memory(self, pairs: list[tuple[str, str]]) -> dict[tuple[str, str], dict[str, Any]]:
        """Peak memory of each (model, runtime name) at the heaviest shape timed (batch 8, longest sequence).

        Measured after the timing, in child processes run side by side: memory is per process, so
        they do not disturb each other, and no timed case runs meanwhile.
        """
        if not self.memory_probes:
            return {pair: {"error": "not measured (--no-memory)"} for pair in pairs}

        def one(pair: tuple[str, str]) -> dict[str, Any]:
            model, name = pair
            if self.past(self.memory_stop_after):
                return {"error": f"not measured: past --memory-stop-after {self.memory_stop_after:.0f} s"}
            runtime = BY_NAME[name]
            config = self.catalog.models[model].config
            seq = min(max(SEQ_LENGTHS), max_text_length(config))
            try:
                onnx = self.onnx_path(model, runtime) if runtime.engine != "torch" else None
            except Unavailable as reason:
                return {"error": str(reason)}
            return memory.probe(
                self.catalog.models[model].path,
                name,
                onnx,
                max(BATCH_SIZES),
                seq,
                self.threads,
                timeout=self.memory_timeout,
            )

        # CUDA rows read device-wide free memory: those run one at a time.
        cpu = [p for p in pairs if not BY_NAME[p[1]].is_cuda]
        with ThreadPoolExecutor(max_workers=MEMORY_PROBES_AT_ONCE) as pool:
            found = dict(zip(cpu, pool.map(one, cpu), strict=True))
        found.update({p: one(p) for p in pairs if BY_NAME[p[1]].is_cuda})
        return found
