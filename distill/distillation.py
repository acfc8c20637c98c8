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

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset
from transformers import Trainer

from distill.windows import IGNORE_INDEX, pad_batch

if TYPE_CHECKING:
    from distill.loss_terms import LossTerm


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
    if hasattr(model, PROJECTION):
        delattr(model, PROJECTION)


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


@dataclass
class TermInputs:
    """What a loss term may read: the student's outputs, the batch's labels and teacher targets."""

    logits: torch.Tensor
    labels: torch.Tensor
    targets: torch.Tensor | None  # teacher_logits: the teacher's logits, then its word vector, per position
    hidden_states: tuple[torch.Tensor, ...] | None
    projection: torch.nn.Module | None

    @property
    def teacher_logits(self) -> torch.Tensor:
        return self._targets()[..., : self.logits.shape[-1]]

    @property
    def teacher_vectors(self) -> torch.Tensor:
        return self._targets()[..., self.logits.shape[-1] :]

    def _targets(self) -> torch.Tensor:
        if self.targets is None:
            raise ValueError("this loss term reads the teacher, but the batch carries no teacher targets")
        return self.targets


def hard_label_term(inputs: TermInputs, settings: Mapping[str, Any]) -> torch.Tensor:
    """Cross-entropy with the labels, on labelled positions (what the model's own loss computes)."""
    mask = inputs.labels != IGNORE_INDEX
    student = inputs.logits[mask].float()
    if student.numel() == 0:  # a batch of windows without a labelled word
        return inputs.logits.sum() * 0.0
    return F.cross_entropy(student, inputs.labels[mask])


def soft_target_term(inputs: TermInputs, settings: Mapping[str, Any]) -> torch.Tensor:
    """T^2 * KL(teacher_T || student_T): distillation_loss at alpha 1."""
    return distillation_loss(
        inputs.logits, inputs.teacher_logits, inputs.labels, settings["temperature"], alpha=1.0
    )


def word_vector_term(inputs: TermInputs, settings: Mapping[str, Any]) -> torch.Tensor:
    """The student's last hidden state, projected to the teacher's width, against the teacher's word vectors."""
    if inputs.hidden_states is None or inputs.projection is None:
        raise ValueError("the word_vectors term needs the student's hidden states and its projection")
    projected = inputs.projection(inputs.hidden_states[-1])
    return feature_loss(projected, inputs.teacher_vectors, inputs.labels, settings["distance"])


class DistillationTrainer(Trainer):
    """A Trainer whose loss is the declared sum of weighted terms (loss_terms.py), over cached teacher targets."""

    def __init__(self, *args: Any, terms: Sequence[LossTerm], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.terms = [t for t in terms if t.weight]
        self.hidden = any(t.kind.student_hidden_states for t in self.terms)

    def compute_loss(
        self,
        model: torch.nn.Module,
        inputs: dict[str, torch.Tensor],
        return_outputs: bool = False,
        num_items_in_batch: Any = None,
    ) -> torch.Tensor | tuple[torch.Tensor, Any]:
        labels = inputs.pop("labels")
        targets = inputs.pop("teacher_logits", None)  # only terms that read the teacher need them
        outputs = model(**inputs, output_hidden_states=self.hidden)
        # Through the (possibly DDP-wrapped) model, so the projection's gradient is reduced too.
        projection = getattr(self.accelerator.unwrap_model(model), PROJECTION, None)
        term_inputs = TermInputs(
            outputs.logits, labels, targets, outputs.hidden_states if self.hidden else None, projection
        )
        loss = sum(t.weight * t.kind.compute(term_inputs, t.settings) for t in self.terms)
        return (loss, outputs) if return_outputs else loss
