"""What every loss term reads (TermInputs): the bottom of distill/terms/, importing none of its terms."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class TermInputs:
    """What a loss term may read: the student's outputs, the batch's labels, the teacher's targets.

    Each field is filled only when a declared term needs it (TermKind.needs in declared.py): the
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
