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

from distill.labels import OUTSIDE, tag_names

REPLACE_RATE = 0.15
JITTER = 10  # units of the 0..1000 box grid


def segments(tags: list[int], boxes: list[list[int]], names: list[str]) -> list[tuple[int, int]]:
    """[start, end) word ranges: an entity (B- then its I-s) or a run of O words on the same box.

    `names`: the tag name of each id (the split's ner_tags ClassLabel).
    """
    spans: list[tuple[int, int]] = []
    for i, tag in enumerate(tags):
        label = names[tag]
        starts = (
            i == 0
            or label.startswith("B-")
            or (label == OUTSIDE and (names[tags[i - 1]] != OUTSIDE or boxes[i] != boxes[i - 1]))
        )
        if starts:
            spans.append((i, i + 1))
        else:
            spans[-1] = (spans[-1][0], i + 1)
    return spans


def augment(
    form: dict,
    vocabulary: list[str],
    rng: np.random.Generator,
    replace_rate: float,
    jitter: int,
    names: list[str],
) -> dict:
    """One perturbed copy of a form (same columns; the image is the form's own page)."""
    tags, boxes, words = list(form["ner_tags"]), [list(b) for b in form["bboxes"]], list(form["tokens"])
    spans = segments(tags, boxes, names)
    out_words: list[str] = []
    out_boxes: list[list[int]] = []
    out_tags: list[int] = []
    for s in rng.permutation(len(spans)):
        start, end = spans[s]
        dx, dy = (int(v) for v in rng.integers(-jitter, jitter + 1, size=2))
        for i in range(start, end):
            word = vocabulary[rng.integers(len(vocabulary))] if rng.random() < replace_rate else words[i]
            x0, y0, x1, y1 = boxes[i]
            shifted = [x0 + dx, y0 + dy, x1 + dx, y1 + dy]
            out_words.append(word)
            out_boxes.append([min(1000, max(0, v)) for v in shifted])
            out_tags.append(tags[i])
    return {**form, "tokens": out_words, "bboxes": out_boxes, "ner_tags": out_tags}


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
