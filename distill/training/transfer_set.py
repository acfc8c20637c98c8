"""A teacher-labelled transfer set: augmented copies of the training forms, never a test form.

A teacher scores the forms it was fine-tuned on almost exactly as their labels, so on them its
soft targets add little. On perturbed copies of those forms it is less sure, and its word-level
targets carry what it learnt beyond the labels (which neighbours, layouts and words it relies
on). Each copy keeps the form's words and boxes together and changes three things:

- segment order: the form's segments (a B- word and its I- words, or a run of O words on one box)
  are shuffled, so reading order no longer gives the answer away; boxes move with their words;
- words: a share of them is replaced by words drawn from the training forms (their tags stay);
- boxes: each segment is shifted by a few units of the 0..1000 grid.

Only the training split is ever augmented: a held-out (--holdout-forms) or test form cannot enter.
"""

from __future__ import annotations

import datasets
import numpy as np

from distill.labels import tag_names
from distill.perturb import JITTER, REPLACE_RATE, augment


def transfer_set(
    train: datasets.Dataset,
    copies: int,
    seed: int,
    replace_rate: float = REPLACE_RATE,
    jitter: int = JITTER,
) -> datasets.Dataset:
    """`copies` augmented versions of every training form, ids `<form id>#aug<k>`, same features."""
    rng = np.random.default_rng(seed)
    names = train.features["ner_tags"].feature.names
    vocabulary = [w for form in train["tokens"] for w in form]
    # Keep the page images as their encoded bytes: decoding and re-encoding them would cost seconds.
    raw = train.cast_column("image", datasets.Image(decode=False))
    names = tag_names(train, "the training split")
    rows = []
    for k in range(copies):
        for form in raw:
            copy = augment(form, vocabulary, rng, replace_rate, jitter, names)
            rows.append({**copy, "id": f"{form['id']}#aug{k}"})
    columns = {name: [row[name] for row in rows] for name in raw.column_names}
    out = datasets.Dataset.from_dict(columns, features=raw.features)
    return out.cast_column("image", datasets.Image(decode=True))
