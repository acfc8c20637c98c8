"""`--student teacher:N`: a student made of the fine-tuned teacher's own embeddings, classifier and N layers.

DistilBERT initialised its student from every other layer of BERT; SlimDoc does it for LayoutLMv3 and
LiLT. The student is the teacher's own class (LayoutLMv3, LayoutLM, LiLT, BERT, RoBERTa, MPNet,
DistilBERT...) with fewer layers: a fresh model of the teacher's config at N layers, loaded with the
teacher's weights under renumbered layer names, strictly (every weight the student has comes from the
teacher, none is left at an initialiser). So it keeps the teacher's 2-D embeddings, attention biases and
(optionally) image patches, uses its tokenizer and processor, and saves as a plain Hugging Face
directory that loads, exports and predicts like any model.

Spacing (--teacher-layer-choice, distill/student_spec.py: spaced): by default N of L layers are taken at
round(i * L / N), i = 0..N-1: 0, 2, 4, ..., 10 for 6 of 12 -- DistilBERT's choice, which keeps the bottom
layer (the one that reads the embeddings as they are) and spreads the rest evenly; the copied top layer
then feeds the classifier a representation from one layer below the teacher's last. `top` ends with the
teacher's top layer instead, `top-heavy` keeps the bottom one and the top N - 1. `teacher:0,3,6,9` gives
the list.
"""

from __future__ import annotations

import re
from typing import Any

import torch
from transformers import PreTrainedModel

from distill.errors import DistillError
from distill.models import Bundle
from distill.student_spec import parse_spec
from distill.windows import IMAGE_MODEL_TYPES, takes_image

# The model-level image path of LayoutLMv3 (absent with visual_embed=False).
IMAGE_PARTS = ("patch_embed.", "cls_token", "pos_embed", "layoutlmv3.LayerNorm.", "layoutlmv3.norm.")


def layer_list(model: PreTrainedModel) -> tuple[str, torch.nn.ModuleList]:
    """The name and ModuleList of the model's transformer blocks (encoder.layer, transformer.layer)."""
    total = model.config.num_hidden_layers
    found = [
        (name, module)
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.ModuleList) and name.endswith(".layer") and len(module) == total
    ]
    if len(found) != 1:
        raise DistillError(
            f"cannot find the {total} transformer layers of a {model.config.model_type!r} teacher "
            f"({len(found)} candidate lists): teacher:N supports encoders with one layer stack"
        )
    return found[0]


def student_state(
    teacher: PreTrainedModel, chosen: list[int], keep_image: bool = True
) -> dict[str, torch.Tensor]:
    """The teacher's weights with layer chosen[i] renamed to layer i, the other layers dropped."""
    stack, _ = layer_list(teacher)
    pattern = re.compile(rf"^{re.escape(stack)}\.(\d+)\.(.*)$")
    position = {layer: i for i, layer in enumerate(chosen)}
    out: dict[str, torch.Tensor] = {}
    for key, value in teacher.state_dict().items():
        match = pattern.match(key)
        if match:
            layer = int(match.group(1))
            if layer in position:
                out[f"{stack}.{position[layer]}.{match.group(2)}"] = value.clone()
        elif keep_image or not any(part in key for part in IMAGE_PARTS):
            out[key] = value.clone()
    return out


def student_config(teacher: PreTrainedModel, layers: int, image: bool) -> Any:
    config = teacher.config.__class__.from_dict(teacher.config.to_dict())
    config.num_hidden_layers = layers  # DistilBERT's n_layers through its attribute map
    if config.model_type in IMAGE_MODEL_TYPES:
        config.visual_embed = image
    config.architectures = [type(teacher).__name__]
    return config


def student_uses_image(teacher: Bundle, want_image: bool) -> bool:
    """A LayoutLMv3 student keeps the image only when asked and when its teacher has one to give."""
    return want_image and takes_image(teacher.model.config)


def teacher_student(
    spec_text: str, teacher: Bundle, image: bool = False, choice: str = "bottom"
) -> tuple[Bundle, list[int]]:
    """The student `spec_text` describes, built from `teacher`; returns it and the teacher layers it kept.

    `image`: a LayoutLMv3 student keeps the teacher's image path (patch embedding, its position
    embeddings and norms) rather than reading text and layout only.
    """
    spec = parse_spec(spec_text)
    model = teacher.model
    if getattr(model.config, "model_type", "") == "ensemble":
        raise DistillError("teacher:N needs one teacher, not an ensemble (--teacher-dir A,B)")
    chosen = spec.chosen(model.config.num_hidden_layers, choice)
    keep_image = student_uses_image(teacher, image)
    config = student_config(model, len(chosen), keep_image)
    student = type(model)(config)
    state = student_state(model, chosen, keep_image)
    # Strict: every weight of the student comes from the teacher (visual_bbox etc. are buffers rebuilt
    # from the config, not loaded, so strictness is about weights only).
    missing, unexpected = student.load_state_dict(state, strict=False)
    missing = [k for k in missing if k in dict(student.named_parameters())]
    if missing or unexpected:
        raise DistillError(
            f"could not build teacher:{len(chosen)} from a {config.model_type!r} teacher: missing "
            f"{missing[:3]}, unexpected {unexpected[:3]}"
        )
    processor = teacher.image_processor if keep_image else None
    return Bundle(student, teacher.tokenizer, processor), chosen
