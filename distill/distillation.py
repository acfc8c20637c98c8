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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset
from transformers import Trainer

from distill.layer_match import LAYER_PROJECTIONS, detach_layer_projections
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


@dataclass
class TermInputs:
    """What a loss term may read: the student's outputs, the batch's labels, the teacher's targets.

    Each field is filled only when a declared term needs it (TermKind.needs in loss_terms.py): the
    cached teacher targets from the windows, the student's hidden states or attentions, the frozen
    teacher's own (it runs on the batch only for layer-to-layer terms), the per-tag class weights.
    """

    logits: torch.Tensor
    labels: torch.Tensor
    targets: torch.Tensor | None  # teacher_logits: the teacher's logits, then its word vector, per position
    hidden_states: tuple[torch.Tensor, ...] | None
    projection: torch.nn.Module | None
    attention_mask: torch.Tensor | None = None
    attentions: tuple[torch.Tensor, ...] | None = None
    teacher_hidden_states: tuple[torch.Tensor, ...] | None = None
    teacher_attentions: tuple[torch.Tensor, ...] | None = None
    layer_projections: torch.nn.ModuleDict | None = None  # per student layer, where widths differ
    class_weights: torch.Tensor | None = None

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


def soft_target_term(inputs: TermInputs, settings: Mapping[str, Any]) -> torch.Tensor:
    """T^2 * KL(teacher_T || student_T): distillation_loss at alpha 1."""
    return distillation_loss(
        inputs.logits, inputs.teacher_logits, inputs.labels, settings["temperature"], alpha=1.0
    )


def word_vector_term(inputs: TermInputs, settings: Mapping[str, Any]) -> torch.Tensor:
    """The student's last hidden state, projected to the teacher's width, against the teacher's word vectors."""
    if inputs.hidden_states is None or inputs.projection is None:
        raise ValueError("the word_vectors term needs the student's hidden states and its projection")
    # The text positions only: a LayoutLMv3 that reads the image appends its patches after them.
    projected = inputs.projection(inputs.hidden_states[-1][:, : inputs.labels.shape[1]])
    return feature_loss(projected, inputs.teacher_vectors, inputs.labels, settings["distance"])


class DistillationTrainer(Trainer):
    """A Trainer whose loss is the declared sum of weighted terms (loss_terms.py).

    The teacher's word targets come cached in the windows. A term that reads the teacher's hidden
    states or attentions (layer-to-layer distillation, layer_match.py) has the frozen `teacher` run
    on each batch instead; `teacher_inputs` are the batch fields only the teacher reads (a
    LayoutLMv3 teacher's page image where its student reads text and layout only).
    """

    def __init__(
        self,
        *args: Any,
        terms: Sequence[LossTerm],
        teacher: torch.nn.Module | None = None,
        teacher_inputs: Sequence[str] = (),
        class_weights: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.terms = [t for t in terms if t.weight]
        needs = set().union(*(t.kind.needs for t in self.terms))
        self.hidden = bool(needs & {"student_hidden_states", "teacher_vectors"})
        self.attentions = "student_attentions" in needs
        self.teacher_hidden = "teacher_hidden_states" in needs
        self.teacher_attentions = "teacher_attentions" in needs
        live = self.teacher_hidden or self.teacher_attentions
        if live and teacher is None:
            raise ValueError("a layer-to-layer term runs the teacher in the loss, but no teacher was given")
        self.teacher = teacher.eval().requires_grad_(False) if live and teacher is not None else None
        self.teacher_inputs = list(teacher_inputs)
        self.class_weights = class_weights

    def teacher_outputs(self, inputs: dict[str, torch.Tensor], extra: dict[str, torch.Tensor]) -> Any:
        """The frozen teacher's hidden states (and attentions) on the student's own windows."""
        device = inputs["input_ids"].device
        if next(self.teacher.parameters()).device != device:
            self.teacher.to(device)
        names = set(inspect.signature(self.teacher.forward).parameters)
        feed = {k: v for k, v in {**inputs, **extra}.items() if k in names}
        with torch.no_grad():
            return self.teacher(
                **feed, output_hidden_states=self.teacher_hidden, output_attentions=self.teacher_attentions
            )

    def compute_loss(
        self,
        model: torch.nn.Module,
        inputs: dict[str, torch.Tensor],
        return_outputs: bool = False,
        num_items_in_batch: Any = None,
    ) -> torch.Tensor | tuple[torch.Tensor, Any]:
        labels = inputs.pop("labels")
        targets = inputs.pop("teacher_logits", None)  # only terms that read the cached teacher need them
        extra = {k: inputs.pop(k) for k in self.teacher_inputs if k in inputs}
        outputs = model(**inputs, output_hidden_states=self.hidden, output_attentions=self.attentions)
        # Through the (possibly DDP-wrapped) model, so the projections' gradients are reduced too.
        student = self.accelerator.unwrap_model(model)
        teacher = self.teacher_outputs(inputs, extra) if self.teacher is not None else None
        term_inputs = TermInputs(
            outputs.logits,
            labels,
            targets,
            outputs.hidden_states if self.hidden else None,
            getattr(student, PROJECTION, None),
            attention_mask=inputs.get("attention_mask"),
            attentions=outputs.attentions if self.attentions else None,
            teacher_hidden_states=teacher.hidden_states if self.teacher_hidden else None,
            teacher_attentions=teacher.attentions if self.teacher_attentions else None,
            layer_projections=getattr(student, LAYER_PROJECTIONS, None),
            class_weights=self.class_weights,
        )
        loss = sum(t.weight * t.kind.compute(term_inputs, t.settings) for t in self.terms)
        return (loss, outputs) if return_outputs else loss
