"""Entities out of word tags: BIO spans decoded into text, label, score and enclosing box.

Any label set: a span is a B-X and the I-X words after it. Broken sequences are read the way
seqeval's default (conlleval) mode reads them, so what a user gets is what the F1 counted:
an I-X after O or after another type starts a new X entity, and a change of type mid-span
ends one entity and starts the next.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from distill.labels import OUTSIDE


@dataclass(frozen=True)
class Entity:
    label: str  # the entity type, e.g. QUESTION or menu.price
    text: str  # its words joined by single spaces
    start: int  # index of its first word in the form
    end: int  # one past its last word
    score: float  # mean probability of its words' predicted tags
    box: tuple[int, int, int, int] | None  # the box around its words' boxes (0..1000), None without boxes


def decode_entities(
    words: Sequence[str],
    tags: Sequence[str],
    scores: Sequence[float] | None = None,
    boxes: Sequence[Sequence[int]] | None = None,
) -> list[Entity]:
    """The entities of one form from its word tags (and per-word scores and boxes, when known)."""
    if len(tags) != len(words) or (scores is not None and len(scores) != len(words)):
        raise ValueError(f"{len(words)} words but {len(tags)} tags / {len(scores or [])} scores")
    if boxes is not None and len(boxes) != len(words):
        raise ValueError(f"{len(words)} words but {len(boxes)} boxes")
    spans: list[tuple[str, int, int]] = []  # (type, start, end)
    for i, tag in enumerate(tags):
        kind = None if tag == OUTSIDE else tag[2:]
        continues = tag.startswith("I-") and spans and spans[-1][2] == i and spans[-1][0] == kind
        if continues:
            spans[-1] = (kind, spans[-1][1], i + 1)
        elif kind is not None:  # B-X, or an I-X that cannot continue: a new entity either way
            spans.append((kind, i, i + 1))
    return [_entity(kind, start, end, words, scores, boxes) for kind, start, end in spans]


def _entity(
    kind: str,
    start: int,
    end: int,
    words: Sequence[str],
    scores: Sequence[float] | None,
    boxes: Sequence[Sequence[int]] | None,
) -> Entity:
    score = sum(scores[start:end]) / (end - start) if scores is not None else 1.0
    box = None
    if boxes is not None:
        span = boxes[start:end]
        box = (
            min(b[0] for b in span),
            min(b[1] for b in span),
            max(b[2] for b in span),
            max(b[3] for b in span),
        )
    return Entity(kind, " ".join(words[start:end]), start, end, float(score), box)
