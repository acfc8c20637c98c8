"""Feature distillation: the student's word vectors, through a learned projection, against the teacher's."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F

from distill.config import FEATURE_LOSSES
from distill.terms.inputs import TermInputs
from distill.terms.layers import detach_layer_projections
from distill.windows import IGNORE_INDEX


def feature_loss(
    projected: torch.Tensor, teacher_vectors: torch.Tensor, labels: torch.Tensor, kind: str = "cosine"
) -> torch.Tensor:
    """Distance between the student's projected word vectors and the teacher's, on labelled words.

    cosine: 1 - cos, blind to the teacher's scale (MPNet's vectors have norms near 10, a BERT's
    near 1); mse: mean squared error per dimension.
    """
    mask = labels != IGNORE_INDEX
    student = projected[mask].float()
    if student.numel() == 0:
        return projected.sum() * 0.0
    teacher = teacher_vectors[mask].detach().float()
    if kind == "cosine":
        return (1.0 - F.cosine_similarity(student, teacher, dim=-1)).mean()
    if kind == "mse":
        return F.mse_loss(student, teacher)
    raise ValueError(f"unknown feature loss {kind!r}; choose one of {', '.join(FEATURE_LOSSES)}")


# The learned map from the student's hidden size to the teacher's, attached to the student while it
# trains (so the Trainer's optimiser, checkpoints and DDP carry it) and removed before it is saved.
PROJECTION = "distill_projection"


def attach_projection(model: torch.nn.Module, teacher_hidden: int) -> torch.nn.Linear:
    projection = torch.nn.Linear(model.config.hidden_size, teacher_hidden)
    model.add_module(PROJECTION, projection)
    return projection


def detach_projection(model: torch.nn.Module) -> None:
    """Remove every distillation scaffold (feature and layer projections) before the model is saved."""
    if hasattr(model, PROJECTION):
        delattr(model, PROJECTION)
    detach_layer_projections(model)


def word_vector_term(inputs: TermInputs, settings: Mapping[str, Any]) -> torch.Tensor:
    """The student's last hidden state, projected to the teacher's width, against the teacher's word vectors."""
    if inputs.hidden_states is None or inputs.projection is None:
        raise ValueError("the word_vectors term needs the student's hidden states and its projection")
    # The text positions only: a LayoutLMv3 that reads the image appends its patches after them.
    projected = inputs.projection(inputs.hidden_states[-1][:, : inputs.labels.shape[1]])
    return feature_loss(projected, inputs.teacher_vectors, inputs.labels, settings["distance"])
