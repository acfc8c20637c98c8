"""The soft-target term: KL between the teacher's and the student's temperature-softened word logits.

The teacher's logits are computed once per word (training/teacher_targets.py caches them in the run
directory) and stored at the student's first sub-token of the same word, so the loss compares the two
models on the same word even though their tokenisers split it differently. A window's
`teacher_logits` field holds the logits in its first `num_labels` columns and the teacher's word
vector in the rest, if any.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F

from distill.terms.inputs import TermInputs
from distill.windows import IGNORE_INDEX


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


def soft_target_term(inputs: TermInputs, settings: Mapping[str, Any]) -> torch.Tensor:
    """T^2 * KL(teacher_T || student_T): distillation_loss at alpha 1."""
    return distillation_loss(
        inputs.logits, inputs.teacher_logits, inputs.labels, settings["temperature"], alpha=1.0
    )
