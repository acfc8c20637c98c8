"""The Trainer of a distilled student, and the windows it trains on.

Only the loss is overridden (the declared sum of terms, distill/terms/): mixed precision,
accumulation, checkpoints and DDP/FSDP stay the Hugging Face Trainer's.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset
from transformers import Trainer

from distill.terms.declared import LossTerm
from distill.terms.inputs import TermInputs
from distill.terms.layers import LAYER_PROJECTIONS
from distill.terms.word_vectors import PROJECTION
from distill.windows import pad_batch


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
    """A Trainer whose loss is the declared sum of weighted terms (distill/terms/declared.py).

    The teacher's word targets come cached in the windows. A term that reads the teacher's hidden
    states or attentions (layer-to-layer distillation, distill/terms/layers.py) has the frozen `teacher` run
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
