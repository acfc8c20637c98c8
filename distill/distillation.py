"""Word-level distillation: the loss, the Trainer that uses it, and the windows it trains on.

The teacher's logits (and, for feature distillation, its word vectors) are computed once per
word (see teacher_targets.py, which caches them in the run directory) and stored at the
student's first sub-token of the same word, so the loss compares the two models on the same
word even though their tokenisers split it differently. A window's `teacher_logits` field holds
the logits in its first `num_labels` columns and the teacher's word vector in the rest, if any.
Only the loss is overridden: mixed precision, accumulation, checkpoints and DDP/FSDP stay the
Trainer's.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset
from transformers import Trainer

from distill.layer_match import LAYER_PROJECTIONS, Match, detach_layer_projections, layer_loss
from distill.windows import IGNORE_INDEX, pad_batch


def distillation_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    labels: torch.Tensor,
    temperature: float = 2.0,
    alpha: float = 0.5,
) -> torch.Tensor:
    """alpha * T^2 * KL(teacher_T || student_T) + (1 - alpha) * CE(labels), over labelled positions.

    The T^2 factor keeps the soft term's gradient scale independent of T (Hinton et al., 2015).
    The teacher side is detached: no gradient ever reaches the teacher.
    """
    mask = labels != IGNORE_INDEX
    student = student_logits[mask].float()
    if student.numel() == 0:  # a batch of windows without a labelled word
        return student_logits.sum() * 0.0
    hard = F.cross_entropy(student, labels[mask])
    if alpha == 0.0:
        return hard
    teacher = teacher_logits[mask].detach().float()
    soft = F.kl_div(
        F.log_softmax(student / temperature, dim=-1),
        F.log_softmax(teacher / temperature, dim=-1),
        reduction="batchmean",
        log_target=True,
    )
    return alpha * temperature**2 * soft + (1.0 - alpha) * hard


FEATURE_LOSSES = ("cosine", "mse")


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


class WindowDataset(Dataset):
    """Encoded windows held in memory (a form's windows share one pixel array, never copied)."""

    def __init__(self, windows: Sequence[dict[str, np.ndarray]]) -> None:
        self.windows = list(windows)

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        return self.windows[index]


class WindowCollator:
    """Pads windows into tensors with just the fields the model (and the loss) takes."""

    def __init__(
        self, pad_token_id: int, model_inputs: Sequence[str], extra: Sequence[str] = ("labels",)
    ) -> None:
        self.pad_token_id = pad_token_id
        self.keep = set(model_inputs) | set(extra)

    def __call__(self, features: list[dict[str, np.ndarray]]) -> dict[str, torch.Tensor]:
        batch = pad_batch(
            [{k: v for k, v in f.items() if k in self.keep} for f in features], self.pad_token_id
        )
        return {k: torch.from_numpy(v) for k, v in batch.items()}


class DistillationTrainer(Trainer):
    """A Trainer whose loss mixes the cached teacher's soft targets with the hard labels.

    With `matches` (layer_match.py) it also runs the frozen `teacher` on each batch and adds the
    layer-to-layer terms; `teacher_inputs` are the batch fields only the teacher reads (e.g. the
    page image of a LayoutLMv3 teacher whose student reads text and layout only).
    """

    def __init__(
        self,
        *args: Any,
        temperature: float = 2.0,
        alpha: float = 0.5,
        feature_weight: float = 0.0,
        feature_kind: str = "cosine",
        matches: Sequence[Match] = (),
        teacher: torch.nn.Module | None = None,
        teacher_inputs: Sequence[str] = (),
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.temperature = temperature
        self.alpha = alpha
        self.feature_weight = feature_weight
        self.feature_kind = feature_kind
        self.matches = list(matches)
        self.teacher = teacher.eval().requires_grad_(False) if teacher is not None and self.matches else None
        self.teacher_inputs = list(teacher_inputs)

    def teacher_outputs(self, inputs: dict[str, torch.Tensor], extra: dict[str, torch.Tensor]) -> Any:
        """The frozen teacher's hidden states (and attentions) on the student's own windows."""
        device = inputs["input_ids"].device
        if next(self.teacher.parameters()).device != device:
            self.teacher.to(device)
        names = set(inspect.signature(self.teacher.forward).parameters)
        feed = {k: v for k, v in {**inputs, **extra}.items() if k in names}
        with torch.no_grad():
            return self.teacher(
                **feed,
                output_hidden_states=any(m.feature == "hidden" for m in self.matches),
                output_attentions=any(m.feature == "attention" for m in self.matches),
            )

    def compute_loss(
        self,
        model: torch.nn.Module,
        inputs: dict[str, torch.Tensor],
        return_outputs: bool = False,
        num_items_in_batch: Any = None,
    ) -> torch.Tensor | tuple[torch.Tensor, Any]:
        labels = inputs.pop("labels")
        targets = inputs.pop("teacher_logits")
        extra = {k: inputs.pop(k) for k in self.teacher_inputs if k in inputs}
        features = self.feature_weight > 0
        hidden = features or any(m.feature == "hidden" for m in self.matches)
        attentions = any(m.feature == "attention" for m in self.matches)
        outputs = model(**inputs, output_hidden_states=hidden, output_attentions=attentions)
        num_labels = outputs.logits.shape[-1]
        loss = distillation_loss(
            outputs.logits, targets[..., :num_labels], labels, self.temperature, self.alpha
        )
        if self.matches:
            projections = getattr(self.accelerator.unwrap_model(model), LAYER_PROJECTIONS, None)
            term, _ = layer_loss(
                self.matches,
                outputs,
                self.teacher_outputs(inputs, extra),
                inputs["attention_mask"],
                projections,
            )
            loss = loss + term
        if features:
            # Through the (possibly DDP-wrapped) model, so the projection's gradient is reduced too.
            projection = getattr(self.accelerator.unwrap_model(model), PROJECTION)
            projected = projection(outputs.hidden_states[-1])
            loss = loss + self.feature_weight * feature_loss(
                projected, targets[..., num_labels:], labels, self.feature_kind
            )
        return (loss, outputs) if return_outputs else loss
