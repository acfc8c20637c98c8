"""predict_word_logits with windows batched by length: the same word logits, less padding computed."""

from __future__ import annotations

import numpy as np

from distill.builders import tiny_student
from distill.predict import TorchBackend, predict_word_logits
from distill.schema import FUNSD_LABELS


class Recorder:
    """A Backend that notes each batch's padded shape and real tokens."""

    def __init__(self, backend: TorchBackend) -> None:
        self.backend, self.input_names, self.shapes, self.real = backend, backend.input_names, [], []

    def __call__(self, batch: dict) -> np.ndarray:
        self.shapes.append(batch["input_ids"].shape)
        self.real.append(int(batch["attention_mask"].sum()))
        return self.backend(batch)


def test_windows_sorted_by_length_give_the_same_words_with_less_padding() -> None:
    rng = np.random.default_rng(0)
    vocabulary = [f"w{i}" for i in range(40)]
    bundle = tiny_student(vocabulary * 3, FUNSD_LABELS)
    encoder = bundle.encoder(32, 8)
    # Forms of very different lengths: short ones give one short window, long ones several full ones.
    forms = [{"tokens": list(rng.choice(vocabulary, size=int(n)))} for n in rng.integers(1, 90, size=24)]
    plain, ordered = Recorder(TorchBackend(bundle.model)), Recorder(TorchBackend(bundle.model))
    want = predict_word_logits(encoder, plain, forms, batch_size=4)
    got = predict_word_logits(encoder, ordered, forms, batch_size=4, sort_by_length=True)
    assert [len(w) for w in got] == [len(f["tokens"]) for f in forms]
    for a, b in zip(got, want, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)
    assert sum(ordered.real) == sum(plain.real)  # every window ran once either way
    padded = {name: sum(b * n for b, n in r.shapes) for name, r in (("plain", plain), ("sorted", ordered))}
    assert padded["sorted"] < 0.9 * padded["plain"], padded
