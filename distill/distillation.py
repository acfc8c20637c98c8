"""Word-level distillation: the loss, the Trainer that uses it, and the windows it trains on.

The teacher's logits are computed once per word (see teacher_cache.py) and stored at the
student's first sub-token of the same word, so the loss compares the two models on the same
word even though their tokenisers split it differently. Only the loss is overridden: mixed
precision, accumulation, checkpoints and DDP/FSDP stay the Trainer's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset
from transformers import Trainer

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
    """A Trainer whose loss mixes the cached teacher's soft targets with the hard labels."""

    def __init__(self, *args: Any, temperature: float = 2.0, alpha: float = 0.5, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.temperature = temperature
        self.alpha = alpha

    def compute_loss(
        self,
        model: torch.nn.Module,
        inputs: dict[str, torch.Tensor],
        return_outputs: bool = False,
        num_items_in_batch: Any = None,
    ) -> torch.Tensor | tuple[torch.Tensor, Any]:
        labels = inputs.pop("labels")
        teacher_logits = inputs.pop("teacher_logits")
        outputs = model(**inputs)
        loss = distillation_loss(outputs.logits, teacher_logits, labels, self.temperature, self.alpha)
        return (loss, outputs) if return_outputs else loss
