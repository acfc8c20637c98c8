"""A fixed perturbation of forms: segments shuffled, a share of words replaced, boxes jittered.

The export's int8 gate scores every variant on such copies (export/onnx.py), so its recipe is fixed
here, apart from the training side's transfer set: a change of the transfer-set recipe never moves
the gate.
"""

from __future__ import annotations

import numpy as np

from distill.labels import OUTSIDE

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
