"""Checks of the options that need more than a comparison: the transfer set's and the students'.

Kept beside distill/config.py (which declares the options and calls these from TrainConfig.validate),
so that file stays a declaration; these take any object with the options' attributes.
"""

from __future__ import annotations

from typing import Any

from distill.errors import DistillError

TRANSFER_CANDIDATES = ("neighbours", "random")  # --transfer-candidates
TRANSFER_STEPS = ("grow", "same")  # --transfer-steps
MAX_COPIES = 30  # --transfer-copies: TinyBERT's largest
HIDDEN_LOSSES = ("mse", "cosine")  # --hidden-loss


def validate_transfer_options(config: Any) -> None:
    if not 0 <= config.transfer_copies <= MAX_COPIES:
        raise DistillError(f"--transfer-copies must be within 0..{MAX_COPIES}, got {config.transfer_copies}")
    if not 0.0 <= config.transfer_replace <= 1.0:
        raise DistillError(f"--transfer-replace must be within 0..1, got {config.transfer_replace}")
    if config.transfer_candidates not in TRANSFER_CANDIDATES:
        raise DistillError(
            f"--transfer-candidates must be one of {', '.join(TRANSFER_CANDIDATES)}, "
            f"got {config.transfer_candidates!r}"
        )
    try:
        scales = ocr_scales(config.transfer_ocr)
    except ValueError:
        scales = [0.0]
    if any(s <= 0 for s in scales):
        raise DistillError(
            f"--transfer-ocr takes positive scales, comma-separated, got {config.transfer_ocr!r}"
        )
    if config.teacher_targets_from not in ("export", "pytorch"):
        raise DistillError(
            f"--teacher-targets-from must be export or pytorch, got {config.teacher_targets_from!r}"
        )
    if config.transfer_schedule not in ("joint", "two-stage"):
        raise DistillError(
            f"--transfer-schedule must be joint or two-stage, got {config.transfer_schedule!r}"
        )
    if config.transfer_schedule == "two-stage" and not (config.hidden_weight or config.attention_weight):
        raise DistillError(
            "--transfer-schedule two-stage distils the layers first: give it a layer term "
            "(--hidden-weight or --attention-weight)"
        )
    if config.transfer_steps not in TRANSFER_STEPS:
        raise DistillError(
            f"--transfer-steps must be one of {', '.join(TRANSFER_STEPS)}, got {config.transfer_steps!r}"
        )


def ocr_scales(text: str) -> list[float]:
    """--transfer-ocr's scales: "1,2" -> [1.0, 2.0]; empty: none."""
    return [float(part) for part in text.split(",") if part.strip()]


def validate_student_options(config: Any) -> None:
    """teacher:N and layer-to-layer options (their logic: distill/student_spec.py, distill/terms/layers.py)."""
    from distill.student_spec import LAYER_CHOICES, is_teacher_spec, parse_spec

    if config.teacher_layer_choice not in LAYER_CHOICES:
        raise DistillError(
            f"--teacher-layer-choice must be one of {', '.join(LAYER_CHOICES)}, got {config.teacher_layer_choice!r}"
        )

    if config.hidden_weight < 0 or config.attention_weight < 0:
        raise DistillError("--hidden-weight and --attention-weight cannot be negative")
    if config.hidden_loss not in HIDDEN_LOSSES:
        raise DistillError(
            f"--hidden-loss must be one of {', '.join(HIDDEN_LOSSES)}, got {config.hidden_loss!r}"
        )
    if is_teacher_spec(config.student):
        parse_spec(config.student)
        if config.student_layout:
            raise DistillError(
                "--student-layout with --student teacher:N: that student has its teacher's layout"
            )
