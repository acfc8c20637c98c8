"""The reference row: what a user gets without this project.

The student's plain fp32 ONNX export (optimum's exporter, no graph optimiser) quantised with
optimum's out-of-the-box recipe: `ORTQuantizer` + the `AutoQuantizationConfig` for this CPU,
dynamic, every default left as it is. Timed beside our int8 variant, it shows what the
project's export adds.
"""

from __future__ import annotations

import shutil
from pathlib import Path

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
