"""onnxruntime's transformer optimiser: fuse attention, LayerNorm, GELU... where the graph allows.

The "bert" optimiser covers the BERT family (DistilBERT, MiniLM, LayoutLM v1 once its attention
is exported in the classic form: see convert.fusable_attention). LayoutLMv3's attention adds
relative 1-D and 2-D position biases that no fused kernel takes, so the teacher gets the LayerNorm
and GELU fusions only; the manifest lists what each model actually received.
"""

from __future__ import annotations

import contextlib
import io
import logging
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from onnxruntime.transformers.fusion_options import FusionOptions
from onnxruntime.transformers.onnx_model import OnnxModel
from onnxruntime.transformers.optimizer import optimize_model
from transformers import PretrainedConfig

OPTIMIZER_MODEL_TYPE = "bert"


# onnxruntime's symbolic shape inference cannot follow LayoutLMv3's relative-position biases (a TypeError in
# its Unsqueeze rule); the optimiser then skips the one pass that needs shapes (removing useless Casts) and
# print()s this line, which no logging filter reaches. Every other printed line still shows (on stderr).
SHAPE_INFERENCE_NOISE = "failed in shape inference"


class _DropPrinted(io.TextIOBase):
    """stdout for the optimiser, line by line: its known noise dropped, any other line passed to stderr."""

    def __init__(self) -> None:
        self.pending = ""

    def write(self, text: str) -> int:
        self.pending += text
        *lines, self.pending = self.pending.split("\n")
        sys.stderr.write("".join(f"{line}\n" for line in lines if not line.startswith(SHAPE_INFERENCE_NOISE)))
        return len(text)

    def close_lines(self) -> None:
        if self.pending and not self.pending.startswith(SHAPE_INFERENCE_NOISE):
            sys.stderr.write(self.pending)
        self.pending = ""


@contextlib.contextmanager
def quiet_optimizer() -> Iterator[None]:
    """The optimiser logs every pattern it fails to match as a warning; keep the console readable."""
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    printed = _DropPrinted()
    try:
        with contextlib.redirect_stdout(printed):
            yield
    finally:
        printed.close_lines()
        logging.disable(previous)


def optimize(
    fp32_path: Path,
    out_path: Path,
    config: PretrainedConfig,
    use_gpu: bool = False,
) -> tuple[dict[str, int], float]:
    """Fuse `fp32_path` into `out_path`; returns the fused operators (name -> count) and the seconds taken.

    opt_level 1 (onnxruntime's basic, hardware-independent rewrites) then the Python fusions: the
    saved graph runs on any provider; onnxruntime adds its hardware-specific rewrites at load time.
    `use_gpu` targets the CUDA provider (the graph fp16 is made from) with the Python fusions alone
    (opt_level 0), on every machine: onnxruntime's own pass would need a CUDA session, and a graph
    a CUDA session optimised and saved holds Memcpy nodes that a CPU session cannot load
    (onnxruntime issues 11348, 17837). The CUDA session applies its rewrites when it loads the file,
    and the export is the same with or without a GPU.
    """
    started = time.perf_counter()
    with quiet_optimizer():
        model = fuse(fp32_path, config, use_gpu=use_gpu, opt_level=0 if use_gpu else 1)
        model.save_model_to_file(str(out_path))
    return fusions(model), time.perf_counter() - started


def fuse(fp32_path: Path, config: PretrainedConfig, use_gpu: bool = False, opt_level: int = 1) -> OnnxModel:
    options = FusionOptions(OPTIMIZER_MODEL_TYPE)
    # Exact GELU (erf) stays exact: the approximation would cost parity for a speed-up this
    # model size does not need.
    options.enable_gelu_approximation = False
    return optimize_model(
        str(fp32_path),
        model_type=OPTIMIZER_MODEL_TYPE,
        num_heads=int(getattr(config, "num_attention_heads", 0) or 0),
        hidden_size=int(getattr(config, "hidden_size", 0) or 0),
        optimization_options=options,
        opt_level=opt_level,
        use_gpu=use_gpu,
    )


def fusions(model: OnnxModel) -> dict[str, int]:
    """The fused operators present in an optimised model (those with a count above zero)."""
    return {name: int(count) for name, count in model.get_fused_operator_statistics().items() if count}
