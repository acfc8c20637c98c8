"""What `--student teacher:N` (or teacher:i,j,k) asks for: which of the teacher's layers the student keeps.

The building itself is training's (distill/training/teacher_init.py); the spec is part of a run's
options, validated with them (distill/config.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from distill.errors import DistillError

PREFIX = "teacher:"
LAYER_CHOICES = ("bottom", "top", "top-heavy")  # --teacher-layer-choice: how teacher:N spaces its N


def is_teacher_spec(student: str) -> bool:
    return student.startswith(PREFIX)


@dataclass(frozen=True)
class TeacherSpec:
    """What `teacher:N` or `teacher:i,j,k` asks for: a count, or explicit teacher layer indices."""

    count: int | None = None
    layers: tuple[int, ...] = ()

    def chosen(self, teacher_layers: int, choice: str = "bottom") -> list[int]:
        """The teacher layers the student keeps, in order; a bad choice is a DistillError.

        `choice` spaces a count (LAYER_CHOICES); an explicit list is kept as written.
        """
        if self.layers:
            chosen = list(self.layers)
            if any(b <= a for a, b in zip(chosen, chosen[1:], strict=False)):
                raise DistillError(f"--student teacher:{','.join(map(str, chosen))}: layers must increase")
            if chosen[-1] >= teacher_layers:
                raise DistillError(
                    f"--student teacher:{','.join(map(str, chosen))}: the teacher has layers 0..{teacher_layers - 1}"
                )
            return chosen
        n = self.count or 0
        if not 1 <= n <= teacher_layers:
            raise DistillError(f"--student teacher:{n}: choose 1 to {teacher_layers} of the teacher's layers")
        return spaced(n, teacher_layers, choice)


def parse_spec(student: str) -> TeacherSpec:
    """`teacher:6` -> 6 layers evenly spaced; `teacher:0,3,6,9` -> those layers."""
    body = student.removeprefix(PREFIX)
    if re.fullmatch(r"\d+", body):
        return TeacherSpec(count=int(body))
    if re.fullmatch(r"\d+(,\d+)+", body):
        return TeacherSpec(layers=tuple(int(x) for x in body.split(",")))
    raise DistillError(f"--student {student!r}: write teacher:N (e.g. teacher:6) or a list (teacher:0,3,6,9)")


def evenly_spaced(n: int, total: int) -> list[int]:
    """round(i * total / n) for i < n: 0, 2, ..., 10 for 6 of 12 (see the module docstring)."""
    return [int(i * total / n + 0.5) for i in range(n)] if n < total else list(range(total))


def spaced(n: int, total: int, choice: str = "bottom") -> list[int]:
    """n of `total` layers by `choice` (--teacher-layer-choice), for 6 of 12:

    - bottom: every other from the bottom, 0, 2, ..., 10 (DistilBERT's), the top layer dropped;
    - top: every other ending with the top one, 1, 3, ..., 11, the layer the classifier was trained on;
    - top-heavy: the bottom layer and the top n - 1, 0, 7, 8, 9, 10, 11.
    """
    if choice not in LAYER_CHOICES:
        raise DistillError(
            f"--teacher-layer-choice must be one of {', '.join(LAYER_CHOICES)}, got {choice!r}"
        )
    if n >= total:
        return list(range(total))
    if choice == "top":
        return [total - 1 - int((n - 1 - i) * total / n + 0.5) for i in range(n)]
    if choice == "top-heavy":
        return [total - 1] if n == 1 else [0, *range(total - n + 1, total)]
    return evenly_spaced(n, total)
