"""PyTorch -> ONNX fp32 with optimum's exporter: dynamic batch and sequence axes, a loadable IR version.

The exported directory is self-contained: model.onnx beside the model's config, tokenizer and
(for LayoutLMv3) image-processor files, so `ORTModelForTokenClassification.from_pretrained(dir)`
and the prediction API load it without the PyTorch weights.
"""

from __future__ import annotations

import contextlib
import shutil
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import onnx
import torch
from optimum.exporters.onnx import onnx_export_from_model
from transformers import AttentionInterface, PreTrainedModel

from distill.errors import DistillError
from distill.windows import IMAGE_MODEL_TYPES, takes_image

MODEL_FILE = "model.onnx"
TASK = "token-classification"
# Files of a save_pretrained directory (or of the fp32 export) that another variant's directory does not need:
# weights, and the ONNX graph itself (an OpenVINO variant's directory must not hold a model.onnx).
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".h5", ".msgpack", ".onnx", ".onnx_data")

# Model types whose self-attention goes through transformers' AttentionInterface with a mask
# slice that onnxruntime's attention fusion does not recognise (see `fusable_attention`).
_INTERFACE_ATTENTION_TYPES = {"layoutlm"}
_FUSABLE = "onnx_fusable"


def _fusable_attention(module, query, key, value, attention_mask, scaling, dropout=0.0, **kwargs):  # noqa: ANN001
    """Eager attention in the classic BERT form (scores / sqrt(d) + mask -> softmax -> @ v).

    transformers' eager attention multiplies by the scale, slices the mask to the key length and
    casts around the softmax; the traced graph then misses onnxruntime's Attention fusion
    pattern. This is the same arithmetic (the slice is a no-op for self-attention, the casts are
    fp32 -> fp32) in the shape the fusion matches; parity against the unpatched model proves it.
    """
    scores = torch.matmul(query, key.transpose(-1, -2)) / (1.0 / scaling)
    if attention_mask is not None:
        scores = scores + attention_mask
    probs = torch.softmax(scores, dim=-1)
    return torch.matmul(probs, value).transpose(1, 2).contiguous(), probs


AttentionInterface.register(_FUSABLE, _fusable_attention)


@contextlib.contextmanager
def fusable_attention(model: PreTrainedModel) -> Iterator[None]:
    """While exporting, route the model's attention through `_fusable_attention` where it applies."""
    if model.config.model_type not in _INTERFACE_ATTENTION_TYPES:
        yield
        return
    previous = model.config._attn_implementation
    model.config._attn_implementation = _FUSABLE
    try:
        yield
    finally:
        model.config._attn_implementation = previous


def text_only_onnx_configs(model: PreTrainedModel) -> dict | None:
    """optimum's LayoutLMv3 config always feeds pixel_values; one built without its image path
    (visual_embed=False) has no patch embedding to take them, so its export drops that input."""
    if model.config.model_type not in IMAGE_MODEL_TYPES or takes_image(model.config):
        return None
    from optimum.exporters.onnx.model_configs import LayoutLMv3OnnxConfig

    class TextLayoutLMv3OnnxConfig(LayoutLMv3OnnxConfig):
        @property
        def inputs(self) -> dict[str, dict[int, str]]:
            return {k: v for k, v in super().inputs.items() if k != "pixel_values"}

    return {"model": TextLayoutLMv3OnnxConfig(model.config, task=TASK)}


def copy_preprocessing_files(model_dir: Path, out_dir: Path) -> None:
    """Config, tokenizer and processor files of a model directory (everything but the weights)."""
    for item in model_dir.iterdir():
        if item.is_file() and not item.name.endswith(WEIGHT_SUFFIXES) and item.name != "training_args.bin":
            if not (out_dir / item.name).exists():
                shutil.copy2(item, out_dir / item.name)


def export_fp32(model: PreTrainedModel, model_dir: Path, out_dir: Path, opset: int | None = None) -> float:
    """Export `model` (loaded from `model_dir`) to `out_dir/model.onnx`; returns the seconds it took."""
    started = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    model = model.eval().to("cpu")
    try:
        with fusable_attention(model), torch.no_grad(), warnings.catch_warnings():
            # transformers builds the inverted mask from torch.tensor(1.0): the tracer warns that it becomes
            # a constant, which a constant 1.0 is meant to be. Other tracer warnings still show.
            warnings.filterwarnings(
                "ignore",
                message="torch.tensor results are registered as constants",
                category=torch.jit.TracerWarning,
                module="transformers.modeling_attn_mask_utils",
            )
            # Validation against PyTorch happens afterwards on real evaluation windows (validate.py),
            # with our tolerances; optimum's own check on random inputs would only repeat it.
            onnx_export_from_model(
                model,
                out_dir,
                opset=opset,
                task=TASK,
                do_validation=False,
                custom_onnx_configs=text_only_onnx_configs(model),
            )
    except Exception as err:  # the exporter raises many types; name the model that failed
        raise DistillError(
            f"ONNX export failed ({err.__class__.__name__}: {str(err).splitlines()[0]})", model_dir
        ) from err
    path = out_dir / MODEL_FILE
    if not path.is_file():
        raise DistillError(f"the exporter wrote no {MODEL_FILE}", out_dir)
    copy_preprocessing_files(model_dir, out_dir)
    return time.perf_counter() - started


def describe(path: Path) -> dict:
    """IR version, opsets and the input/output signature of an ONNX file (for the manifest)."""
    model = onnx.load(str(path), load_external_data=False)

    def dims(value: onnx.ValueInfoProto) -> list[str | int]:
        return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]

    return {
        "ir_version": model.ir_version,
        "opsets": {op.domain or "ai.onnx": op.version for op in model.opset_import},
        "inputs": {i.name: dims(i) for i in model.graph.input},
        "outputs": {o.name: dims(o) for o in model.graph.output},
    }
