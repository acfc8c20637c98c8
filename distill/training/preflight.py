"""Settings that cannot work, refused before any data is loaded or any model trained.

Two kinds so far: a window longer than a model has positions for (an IndexError deep in the first
forward pass on CPU, a device-side assert on GPU), and mixed precision this machine would only
emulate (bf16 on a CPU without native bfloat16 ran a MiniLM training step 20x slower than fp32:
76 s against 3.9 s on an AVX2-only EPYC).
"""

from __future__ import annotations

import torch

from distill.config import TINY, TrainConfig
from distill.errors import DistillError
from distill.hardware import TINY_POSITIONS, bf16_refusal, cpu_features, position_limit
from distill.student_spec import is_teacher_spec


def _named_limit(name: str) -> int | None:
    """The position limit of a model named by hub id or directory; None where its config is not at hand.

    An unreadable config is not refused here: loading the model reports it with the fuller message.
    """
    if name == TINY:
        return TINY_POSITIONS
    from transformers import AutoConfig

    try:
        return position_limit(AutoConfig.from_pretrained(name))
    except (OSError, ValueError):
        return None


def check_max_length(config: TrainConfig) -> None:
    models: list[tuple[str, str]] = []
    if config.teacher_dir:
        models += [("teacher", d) for d in config.teacher_dir.split(",") if d]
    elif config.stage in ("teacher", "all"):
        models.append(("teacher", config.teacher))
    if config.stage in ("student", "all") and not is_teacher_spec(config.student):
        models.append(("student", config.student))  # a teacher:N student has its teacher's positions
    for role, name in models:
        limit = _named_limit(name)
        if limit is not None and config.max_length > limit:
            raise DistillError(
                f"--max-length {config.max_length} is more than the {role} {name!r} has positions for "
                f"({limit}): use --max-length {limit} or less (longer forms are split into windows anyway)"
            )


def check_precision(config: TrainConfig) -> None:
    if not (config.bf16 or config.fp16):
        return
    if torch.cuda.is_available() or torch.backends.mps.is_available():
        return  # the Trainer checks GPU support itself
    if config.fp16:
        raise DistillError(
            "--fp16 needs a CUDA GPU and none is here: train in fp32 (the default), or --bf16 on a "
            "CPU with native bfloat16"
        )
    reason = bf16_refusal(*cpu_features())
    if reason:
        raise DistillError(f"--bf16 refused: {reason}; train without it (fp32 is faster here)")


def check_settings(config: TrainConfig) -> None:
    """Every preflight check; the first failure stops the run with one line."""
    check_precision(config)
    check_max_length(config)
