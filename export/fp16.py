"""fp16 for GPUs: the fused fp32 graph with float weights and activations halved, fp32 at the edges.

Made without a GPU: the conversion is a graph rewrite. Inputs stay int64 (and pixel_values
fp32) and the logits stay fp32 (`keep_io_types`), so callers feed and read the same arrays as
for every other variant.
"""

from __future__ import annotations

import time
from pathlib import Path

import onnx
from onnxruntime.transformers.onnx_model import OnnxModel

from export.optimize import quiet_optimizer


def to_fp16(optimized_path: Path, out_path: Path) -> float:
    """Convert the optimised fp32 model to fp16; returns the seconds taken.

    Starting from the fused graph keeps the fused kernels (Attention, SkipLayerNormalization,
    BiasGelu), which have fp16 CUDA implementations; onnxruntime adds its GPU-specific rewrites
    when a CUDA session loads the file.
    """
    started = time.perf_counter()
    with quiet_optimizer():
        model = OnnxModel(onnx.load(str(optimized_path)))
        model.convert_float_to_float16(keep_io_types=True)
        model.save_model_to_file(str(out_path))
    return time.perf_counter() - started
