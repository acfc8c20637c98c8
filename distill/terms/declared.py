"""The student's loss as a declared sum of terms, each with its weight (TextBrewer's DistillationConfig idea).

A run declares its terms once (`declared_terms`, from the options); the Trainer sums them
(distillation.DistillationTrainer), config.toml, metrics.json and training.md record them, and
whether a student distils at all is whether any of its terms reads the teacher. The teacher's own
fine-tuning loss is declared the same way (`declared_teacher_terms`: cross-entropy, or a
class-balanced or focal loss for rare types). A new term is one entry in TERMS (what it computes,
what it needs) and one line in a `declared_*` function.

Layer-to-layer terms (hidden states, attentions) are declared per kind from the options, then
mapped once both models' shapes are known (`mapped_terms`, in resolve.py): one term per matched
layer pair, with TextBrewer's settings (layer_T, layer_S, feature, loss, proj).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from distill.terms.inputs import TermInputs
from distill.terms.label_losses import label_loss_term
from distill.terms.layers import attention_distribution_term, hidden_state_term, intermediate_matches
from distill.terms.soft_targets import soft_target_term
from distill.terms.word_vectors import word_vector_term

# What a term can ask the Trainer for (TermKind.needs):
#   teacher_logits         the cached teacher word targets in the windows
#   teacher_vectors        ... with the teacher's word vectors, and a word-vector projection on the student
#   student_hidden_states  the student's hidden states; student_attentions its attention maps
#   teacher_hidden_states  the frozen teacher run on the batch, its hidden states (or teacher_attentions)
#   class_weights          per-tag weights from the training windows' tag counts (losses.balanced_weights)
NEEDS = frozenset(
    {
        "teacher_logits",
        "teacher_vectors",
        "student_hidden_states",
        "student_attentions",
        "teacher_hidden_states",
        "teacher_attentions",
        "class_weights",
    }
)


@dataclass(frozen=True)
class TermKind:
    """What a kind of term computes and needs."""

    compute: Callable[[TermInputs, Mapping[str, Any]], Any]
    formula: str  # for reports; {name} placeholders are the term's settings
    needs: frozenset[str] = frozenset()
    layered: bool = False  # one term per matched layer pair (mapped_terms)

    def __post_init__(self) -> None:
        if self.needs - NEEDS:
            raise ValueError(f"unknown needs {sorted(self.needs - NEEDS)}")

    @property
    def reads_teacher(self) -> bool:
        """Whether the term learns from the teacher (cached targets or the teacher run live)."""
        return any(need.startswith("teacher_") for need in self.needs)


TERMS: dict[str, TermKind] = {
    "hard_labels": TermKind(label_loss_term("ce"), "CE(labels)"),
    "soft_targets": TermKind(
        soft_target_term,
        "T²·KL(softmax(teacher/T) ‖ softmax(student/T)) at T = {temperature}",
        frozenset({"teacher_logits"}),
    ),
    "word_vectors": TermKind(
        word_vector_term,
        "{distance} distance of the projected student word vectors to the teacher's",
        frozenset({"teacher_logits", "teacher_vectors"}),
    ),
    "hidden_states": TermKind(
        hidden_state_term,
        "Σ over student→teacher layers {pairs}: {loss} of the student's hidden state{proj} to the frozen "
        "teacher's",
        frozenset({"student_hidden_states", "teacher_hidden_states"}),
        layered=True,
    ),
    "attentions": TermKind(
        attention_distribution_term,
        "KL(teacher ‖ student) of the attention distributions, student→teacher attention layer {pairs}",
        frozenset({"student_attentions", "teacher_attentions"}),
        layered=True,
    ),
    # The teacher's losses for rare types (distill/terms/label_losses.py).
    "balanced_labels": TermKind(
        label_loss_term("balanced"),
        "class-weighted CE(labels), w_c = N / (K·n_c) from the training windows' tag counts",
        frozenset({"class_weights"}),
    ),
    "focal_labels": TermKind(label_loss_term("focal"), "focal loss (1 − p_t)^γ·CE(labels) at γ = {gamma}"),
    "balanced_focal_labels": TermKind(
        label_loss_term("balanced-focal"),
        "class-weighted focal loss (1 − p_t)^γ·CE(labels) at γ = {gamma}, w_c = N / (K·n_c)",
        frozenset({"class_weights"}),
    ),
}


@dataclass(frozen=True)
class LossTerm:
    """One weighted term of a model's loss."""

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
        """How metrics.json (and config.toml's comment) records the term."""
        return {"term": self.name, "weight": self.weight, **self.settings}

    def describe(self) -> str:
        return f"{self.weight:g} · {self.kind.formula.format(**self.settings)}"


def declared_terms(options: Any) -> tuple[LossTerm, ...]:
    """The distilled student's terms from the run's options (alpha, temperature, feature and layer
    weights). Layer terms come unmapped: `mapped_terms` gives their layers."""
    alpha = options.alpha
    terms: list[LossTerm] = []
    if alpha < 1:
        terms.append(LossTerm("hard_labels", round(1.0 - alpha, 12)))
    if alpha > 0:
        terms.append(LossTerm("soft_targets", alpha, {"temperature": options.temperature}))
    if options.feature_weight > 0:
        terms.append(LossTerm("word_vectors", options.feature_weight, {"distance": options.feature_loss}))
    if options.hidden_weight > 0:
        loss = {"feature": "hidden", "loss": f"hidden_{options.hidden_loss}"}
        terms.append(LossTerm("hidden_states", options.hidden_weight, loss))
    if options.attention_weight > 0:
        loss = {"feature": "attention", "loss": "attention_kl"}
        terms.append(LossTerm("attentions", options.attention_weight, loss))
    return tuple(terms)


PLAIN = (LossTerm("hard_labels", 1.0),)  # what the baseline student (and a user without us) trains on

TEACHER_LOSSES = {  # --teacher-loss -> its term
    "ce": "hard_labels",
    "balanced": "balanced_labels",
    "focal": "focal_labels",
    "balanced-focal": "balanced_focal_labels",
}


def declared_teacher_terms(options: Any) -> tuple[LossTerm, ...]:
    """The teacher's fine-tuning loss from --teacher-loss (and --focal-gamma): one term, weight 1."""
    name = TEACHER_LOSSES[options.teacher_loss]
    settings = {"gamma": options.focal_gamma} if "focal" in name else {}
    return (LossTerm(name, 1.0, settings),)


def is_layer_term(term: LossTerm) -> bool:
    return term.kind.layered


def mapped_terms(
    terms: Sequence[LossTerm], student: Any, teacher: Any, copied: Sequence[int] | None = None
) -> tuple[LossTerm, ...]:
    """The layer terms as one term per matched layer pair (layers.intermediate_matches), given the two
    models' configs or Shapes (and a `teacher:N` student's copied layers); the other terms as they are."""
    weights = {t.settings["feature"]: t for t in terms if is_layer_term(t)}
    if not weights:
        return tuple(terms)
    hidden, attention = weights.get("hidden"), weights.get("attention")
    matches = intermediate_matches(
        student,
        teacher,
        hidden.weight if hidden else 0.0,
        hidden.settings["loss"].removeprefix("hidden_") if hidden else "mse",
        attention.weight if attention else 0.0,
        copied,
    )
    layered = [
        LossTerm("hidden_states" if m.feature == "hidden" else "attentions", m.weight,
                 {k: v for k, v in m.record().items() if k != "weight"})
        for m in matches
    ]  # fmt: skip
    return tuple(t for t in terms if not is_layer_term(t)) + tuple(layered)


def intermediate_matches_record(terms: Sequence[LossTerm]) -> list[dict[str, Any]]:
    """The mapped layer terms as TextBrewer lists its intermediate_matches."""
    keys = ("layer_T", "layer_S", "feature", "loss", "weight", "proj")
    return [
        {k: ({**t.settings, "weight": t.weight}).get(k) for k in keys}
        for t in terms
        if is_layer_term(t) and "layer_S" in t.settings
    ]


def uses(terms: Sequence[LossTerm], need: str) -> bool:
    """Whether any term with a weight needs `need` (see NEEDS)."""
    return any(need in t.kind.needs for t in terms if t.weight)


def is_plain(terms: Sequence[LossTerm]) -> bool:
    """Cross-entropy with the labels and nothing else: the model's own loss."""
    return [(t.name, t.weight) for t in terms if t.weight] == [("hard_labels", 1.0)]


def distils(terms: Sequence[LossTerm]) -> bool:
    """Whether a student trained on these terms learns from the teacher at all."""
    return any(t.kind.reads_teacher for t in terms)


def _described(members: Sequence[LossTerm]) -> str:
    """One term, or a layer kind's terms of one weight and distance as one line over their layer pairs."""
    first = members[0]
    if not is_layer_term(first):
        return first.describe()
    pairs = ", ".join(
        f"{m.settings['layer_S']}→{m.settings['layer_T']}" for m in members if "layer_S" in m.settings
    )
    proj = first.settings.get("proj")
    settings = {
        "loss": first.settings["loss"],
        "pairs": pairs or "mapped when both models are known",
        "proj": f" through a linear projection {proj[1]}→{proj[2]}" if proj else "",
    }
    return f"{first.weight:g} · " + first.kind.formula.format(**settings)


def describe(terms: Sequence[LossTerm]) -> str:
    """'loss = 0.5 · CE(labels) + 0.5 · T²·KL(...)' for reports."""
    groups: dict[Any, list[LossTerm]] = {}
    for i, t in enumerate(t for t in terms if t.weight):
        key = (t.name, t.weight, t.settings["loss"], str(t.settings.get("proj"))) if is_layer_term(t) else i
        groups.setdefault(key, []).append(t)
    return "loss = " + " + ".join(_described(members) for members in groups.values())
