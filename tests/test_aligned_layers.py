"""Issue 28: a `teacher:N` student's layer terms line up with the layers it was copied from."""

from __future__ import annotations

import pytest
import torch
from transformers import BertConfig, BertForTokenClassification

from distill.errors import DistillError
from distill.models import Bundle
from distill.student_spec import spaced
from distill.terms.layers import hidden_term, intermediate_matches
from distill.training.teacher_init import teacher_student

LAYERS = 4


def hidden_states(model: torch.nn.Module, ids: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, ...]:
    with torch.no_grad():
        return model(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states


def term_values(choice: str, aligned: bool) -> list[float]:
    """The hidden-state terms of a fresh teacher:2 student of a 4-layer BERT, in layer order."""
    torch.manual_seed(0)
    config = BertConfig(vocab_size=50, hidden_size=32, num_hidden_layers=LAYERS, num_attention_heads=2,
                        intermediate_size=64, num_labels=3)  # fmt: skip
    teacher = BertForTokenClassification(config).eval()
    student, copied = teacher_student("teacher:2", Bundle(teacher, None), choice=choice)
    student.model.eval()
    ids = torch.randint(5, 50, (2, 12))
    mask = torch.ones_like(ids)
    mask[1, 8:] = 0
    s_states, t_states = hidden_states(student.model, ids, mask), hidden_states(teacher, ids, mask)
    matches = intermediate_matches(student.model.config, config, 1.0, copied=copied if aligned else None)
    return [float(hidden_term(s_states[m.layer_S], t_states[m.layer_T], mask, m.loss)) for m in matches]


@pytest.mark.parametrize("choice", ["bottom", "top-heavy"])
def test_before_training_the_embeddings_and_first_copied_layer_terms_are_zero_under_the_aligned_map(
    choice: str,
) -> None:
    embeddings, first, second = term_values(choice, aligned=True)
    assert embeddings < 1e-12 and first < 1e-12, "the student's first states are the teacher's own"
    assert second > 1e-6, "the second copied layer reads another input than in the teacher"
    _, uniform_first, _ = term_values(choice, aligned=False)
    assert uniform_first > 1e-4, "the uniform map compares the first copied layer with a later state"


def test_the_aligned_map_names_the_state_each_copied_layer_produces() -> None:
    student = BertConfig(hidden_size=384, num_hidden_layers=6)
    teacher = BertConfig(hidden_size=768, num_hidden_layers=12)
    for choice, states in [
        ("bottom", [0, 1, 3, 5, 7, 9, 11]),
        ("top", [0, 2, 4, 6, 8, 10, 12]),
        ("top-heavy", [0, 1, 8, 9, 10, 11, 12]),
    ]:
        copied = spaced(6, 12, choice)
        matches = intermediate_matches(student, teacher, 1.0, attention_weight=1.0, copied=copied)
        assert [m.layer_T for m in matches if m.feature == "hidden"] == states, choice
        (attention,) = [m for m in matches if m.feature == "attention"]
        assert attention.layer_T == copied[-1], "the last copied layer's own attention"
    with pytest.raises(DistillError, match="cannot have copied 5"):
        intermediate_matches(student, teacher, 1.0, copied=[0, 2, 4, 6, 8])


def test_layer_choices_space_six_of_twelve_as_documented() -> None:
    assert spaced(6, 12, "bottom") == [0, 2, 4, 6, 8, 10]
    assert spaced(6, 12, "top") == [1, 3, 5, 7, 9, 11]
    assert spaced(6, 12, "top-heavy") == [0, 7, 8, 9, 10, 11]
    assert spaced(12, 12, "top") == list(range(12))
    with pytest.raises(DistillError, match="--teacher-layer-choice"):
        spaced(6, 12, "middle")
