"""The student's loss as a declared sum of terms, each with its weight (TextBrewer's DistillationConfig idea).

A run declares its terms once (`declared_terms`, from the options); the Trainer sums them
(distillation.DistillationTrainer), metrics.json and training.md record them, and whether a
student distils at all is whether any of its terms reads the teacher. A new term is one entry
in TERMS (what it computes, what it needs) and one line in `declared_terms`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from distill.distillation import TermInputs, hard_label_term, soft_target_term, word_vector_term


@dataclass(frozen=True)
class TermKind:
    """What a kind of term computes and needs."""

    compute: Callable[[TermInputs, Mapping[str, Any]], Any]
    formula: str  # for reports; {name} placeholders are the term's settings
    reads_teacher: bool  # needs the cached teacher targets in the windows
    student_hidden_states: bool = False  # needs the student's hidden states
    projection: bool = False  # trains a student-to-teacher width projection (dropped on save)


TERMS: dict[str, TermKind] = {
    "hard_labels": TermKind(hard_label_term, "CE(labels)", reads_teacher=False),
    "soft_targets": TermKind(
        soft_target_term,
        "T²·KL(softmax(teacher/T) ‖ softmax(student/T)) at T = {temperature}",
        reads_teacher=True,
    ),
    "word_vectors": TermKind(
        word_vector_term,
        "{distance} distance of the projected student word vectors to the teacher's",
        reads_teacher=True,
        student_hidden_states=True,
        projection=True,
    ),
}


@dataclass(frozen=True)
class LossTerm:
    """One weighted term of the student's loss."""

    name: str
    weight: float
    settings: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.name not in TERMS:
            raise ValueError(f"unknown loss term {self.name!r}; known: {', '.join(TERMS)}")

    @property
    def kind(self) -> TermKind:
        return TERMS[self.name]

    def record(self) -> dict[str, Any]:
        """How metrics.json records the term."""
        return {"term": self.name, "weight": self.weight, **self.settings}

    def describe(self) -> str:
        return f"{self.weight:g} · {self.kind.formula.format(**self.settings)}"


def declared_terms(options: Any) -> tuple[LossTerm, ...]:
    """The distilled student's terms from the run's options (alpha, temperature, feature weight)."""
    alpha = options.alpha
    terms: list[LossTerm] = []
    if alpha < 1:
        terms.append(LossTerm("hard_labels", round(1.0 - alpha, 12)))
    if alpha > 0:
        terms.append(LossTerm("soft_targets", alpha, {"temperature": options.temperature}))
    if options.feature_weight > 0:
        terms.append(LossTerm("word_vectors", options.feature_weight, {"distance": options.feature_loss}))
    return tuple(terms)


PLAIN = (LossTerm("hard_labels", 1.0),)  # what the baseline student (and a user without us) trains on


def is_plain(terms: Sequence[LossTerm]) -> bool:
    """Cross-entropy with the labels and nothing else: the model's own loss."""
    return [(t.name, t.weight) for t in terms if t.weight] == [("hard_labels", 1.0)]


def distils(terms: Sequence[LossTerm]) -> bool:
    """Whether a student trained on these terms learns from the teacher at all."""
    return any(t.kind.reads_teacher for t in terms)


def describe(terms: Sequence[LossTerm]) -> str:
    """'loss = 0.5 · CE(labels) + 0.5 · T²·KL(...)' for reports."""
    return "loss = " + " + ".join(t.describe() for t in terms if t.weight)
