"""The reference rows: what a user gets without this project, built here without the export's code.

- optimum's: the student's plain fp32 ONNX export (optimum's exporter, no graph optimiser) quantised
  with optimum's out-of-the-box recipe: `ORTQuantizer` + the `AutoQuantizationConfig` for this CPU,
  dynamic, every default left as it is.
- OpenVINO + NNCF's: the same fp32 ONNX file through `openvino.convert_model`, then
  `nncf.quantize(model, nncf.Dataset(samples))` with every default (no model type, no ignored scope,
  NNCF's default 300-sample subset) on training windows, compiled by OpenVINO at its defaults.

Timed beside the student's recommended variant, they show what the project's export adds, but only
where the two are different models: when the project's kept int8 rung is optimum's own recipe (the
unfused graph, per-channel, every MatMul), both files hold the same operators and the same weights
byte for byte, and a speed ratio between them is timing noise. `same_model` checks that on the files
themselves, whatever either recipe is called. Nothing here imports `export`: a reference built with
the export's code would share its mistakes.
"""

from __future__ import annotations

import collections
import hashlib
import shutil
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from bench.machine import quantization_target


def quantize_with_optimum_defaults(fp32_onnx: Path, out_dir: Path, isa: list[str]) -> tuple[Path, str]:
    """Quantise `fp32_onnx` into `out_dir`; returns the model path and the recipe, for the report."""
    from optimum.onnxruntime import ORTQuantizer
    from optimum.onnxruntime.configuration import AutoQuantizationConfig

    target = quantization_target(isa)
    # ORTQuantizer wants a directory holding one .onnx file (and reads config.json beside it).
    source = out_dir / "fp32"
    if source.exists():
        shutil.rmtree(source)
    source.mkdir(parents=True)
    shutil.copy2(fp32_onnx, source / "model.onnx")
    for extra in fp32_onnx.parent.iterdir():
        if extra.name == "config.json" or extra.name.startswith(
            fp32_onnx.name + "_"
        ):  # config, external weights
            shutil.copy2(extra, source / extra.name)
    quantizer = ORTQuantizer.from_pretrained(source)
    config = getattr(AutoQuantizationConfig, target)(is_static=False)
    path = Path(quantizer.quantize(save_dir=out_dir / "int8", quantization_config=config))
    if path.is_dir():
        path = next(path.glob("*.onnx"))
    return (
        path,
        f"optimum ORTQuantizer, AutoQuantizationConfig.{target}(is_static=False), defaults, no graph optimiser",
    )


def quantize_with_openvino_defaults(
    fp32_onnx: Path, out_dir: Path, samples: list[dict[str, np.ndarray]]
) -> tuple[Path, str]:
    """OpenVINO + NNCF out of the box on `fp32_onnx`; `samples` are calibration inputs (training windows,
    named by the fields a window has). Returns the IR path and the recipe, for the report."""
    import nncf
    import openvino as ov

    model = ov.convert_model(str(fp32_onnx))
    names = [port.get_any_name() for port in model.inputs]

    def inputs(sample: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        # BERT-family graphs also take token_type_ids, which a single-sequence window leaves at zero.
        return {n: sample[n] if n in sample else np.zeros_like(sample["input_ids"]) for n in names}

    quantized = nncf.quantize(model, nncf.Dataset([inputs(s) for s in samples]))
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "openvino_model.xml"
    ov.save_model(quantized, str(path))
    return path, (
        f"openvino.convert_model, then nncf.quantize(model, nncf.Dataset(samples)) with NNCF's defaults "
        f"({len(samples)} training windows), compiled at OpenVINO's defaults"
    )


def model_signature(path: Path) -> tuple[tuple[tuple[str, int], ...], tuple[str, ...]]:
    """(operator counts, sorted hashes of every constant tensor): equal for the same model, names aside."""
    model = onnx.load(str(path))  # external data too: the weights are what is compared
    ops = collections.Counter(node.op_type for node in model.graph.node)
    weights = sorted(
        hashlib.sha256(numpy_helper.to_array(init).tobytes()).hexdigest() for init in model.graph.initializer
    )
    return tuple(sorted(ops.items())), tuple(weights)


def same_model(a: Path, b: Path) -> bool:
    """True when two ONNX files run the same operators on the same weights: one recipe, not two."""
    return model_signature(a) == model_signature(b)
