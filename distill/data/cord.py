"""The CORD v2 release (naver-clova-ix/cord-v2) converted to the word-level schema.

Each record has an `image` and a `ground_truth` JSON string: `meta.image_size` {width, height}
and `valid_line[]`, each line a `category` (menu.nm, total.total_price...) and `words[]` with a
`quad` {x1..x4, y1..y4} and `text`. A line becomes one entity (B- on its first word, I- on the
rest); a word's box is its quad's enclosing rectangle, normalised to 0..1000 by the image size
(word boxes: CORD annotates words, not segments). Entity types are collected from the training
split and sorted. CORD's validation split is not used (train and test, as every source).
"""

from __future__ import annotations

import json
from typing import Any

import datasets

from distill.errors import DistillError
from distill.labels import LabelSet, check_type_name
from distill.schema import features

GROUND_TRUTH = "ground_truth"
QUAD_X = ("x1", "x2", "x3", "x4")
QUAD_Y = ("y1", "y2", "y3", "y4")


def is_cord(data: datasets.DatasetDict) -> bool:
    """The CORD release layout: a ground_truth column of JSON strings instead of words and tags."""
    return any(
        GROUND_TRUTH in split.column_names and "tokens" not in split.column_names for split in data.values()
    )


def cord_from_dataset(data: datasets.DatasetDict, origin: str) -> datasets.DatasetDict:
    """Train and test splits of a loaded CORD release, in the schema, labels from its training split."""
    missing = [s for s in ("train", "test") if s not in data]
    if missing:
        raise DistillError(f"{origin} has no {' or '.join(missing)} split (has: {', '.join(data)})")
    read = {split: _read_split(data[split], origin, split) for split in ("train", "test")}
    types = sorted({t for r in read["train"] for t in r["types"]})
    if not types:
        raise DistillError(f"{origin}: empty label set, no valid_line has a category in the training split")
    unseen = sorted({t for r in read["test"] for t in r["types"]} - set(types))
    if unseen:
        ids = [r["id"] for r in read["test"] if set(unseen) & r["types"]]
        raise DistillError(
            f"{origin}: label(s) {', '.join(unseen)} occur in the test split but never in training "
            f"(records: {', '.join(ids[:5])}{' ...' if len(ids) > 5 else ''})"
        )
    labels = LabelSet(tuple(types))
    feats = features(labels.tags)
    out = {}
    for split, records in read.items():
        has_image = "image" in data[split].column_names
        # Images stay as stored (bytes or path): decoding 800 receipts to re-encode them costs minutes.
        images = (
            data[split].cast_column("image", datasets.Image(decode=False))["image"] if has_image else None
        )
        rows = {
            "id": [r["id"] for r in records],
            "tokens": [r["tokens"] for r in records],
            "bboxes": [r["bboxes"] for r in records],
            "ner_tags": [[labels.label2id[t] for t in r["tags"]] for r in records],
            "image": images if images is not None else [None] * len(records),
        }
        description = f"CORD v2 {split} split of {origin}: {len(records)} receipts, {len(types)} entity types"
        if not has_image:
            description += "\nnote: CORD records without an image column: boxes scaled by meta.image_size"
        info = datasets.DatasetInfo(description=description, features=feats)
        out[split] = datasets.Dataset.from_dict(rows, features=feats, info=info)
    return datasets.DatasetDict(out)


def _read_split(split: datasets.Dataset, origin: str, name: str) -> list[dict[str, Any]]:
    if GROUND_TRUTH not in split.column_names:
        raise DistillError(f"{origin} split {name} has no {GROUND_TRUTH} column (CORD layout)")
    return [
        _record(gt, f"{origin} {name} record {i}", f"{name}-{i}") for i, gt in enumerate(split[GROUND_TRUTH])
    ]


def _record(ground_truth: Any, where: str, default_id: str) -> dict[str, Any]:
    try:
        gt = json.loads(ground_truth) if isinstance(ground_truth, str) else ground_truth
        size = gt["meta"]["image_size"]
        width, height = float(size["width"]), float(size["height"])
        lines = gt["valid_line"]
    except (json.JSONDecodeError, TypeError, KeyError, ValueError) as err:
        raise DistillError(
            f"{where}: ground_truth must be CORD JSON with meta.image_size and valid_line ({err!r})"
        ) from err
    if width <= 0 or height <= 0:
        raise DistillError(f"{where}: meta.image_size must be positive, got {size}")
    if not isinstance(lines, list):
        raise DistillError(f"{where}: valid_line must be a list of lines, got {lines!r}")
    tokens: list[str] = []
    bboxes: list[list[int]] = []
    tags: list[str] = []
    for j, line in enumerate(lines):
        category = line.get("category") if isinstance(line, dict) else None
        if not isinstance(category, str) or not category:
            raise DistillError(f"{where} valid_line {j}: no category")
        try:
            check_type_name(category)
        except DistillError as err:
            raise DistillError(f"{where} valid_line {j}: {err}") from err
        line_words = line.get("words", [])
        if not isinstance(line_words, list):
            raise DistillError(
                f"{where} valid_line {j} ({category}): 'words' must be a list, got {line_words!r}"
            )
        words = [w for w in line_words if isinstance(w, dict) and str(w.get("text", "")).strip()]
        for k, word in enumerate(words):
            tokens.append(str(word["text"]))
            bboxes.append(_quad_box(word.get("quad"), width, height, f"{where} valid_line {j} word {k}"))
            tags.append(f"{'B' if k == 0 else 'I'}-{category}")
    image_id = gt.get("meta", {}).get("image_id")
    record_id = f"{default_id.split('-')[0]}-{image_id}" if image_id is not None else default_id
    return {"id": record_id, "tokens": tokens, "bboxes": bboxes, "tags": tags, "types": {t[2:] for t in tags}}


def _quad_box(quad: Any, width: float, height: float, where: str) -> list[int]:
    """The quad's enclosing rectangle, 0..1000 (truncated and clamped like the FUNSD readers)."""
    try:
        xs = [float(quad[k]) for k in QUAD_X]
        ys = [float(quad[k]) for k in QUAD_Y]
    except (TypeError, KeyError, ValueError) as err:
        raise DistillError(f"{where}: quad must have x1..x4 and y1..y4, got {quad!r}") from err
    box = [1000 * min(xs) / width, 1000 * min(ys) / height, 1000 * max(xs) / width, 1000 * max(ys) / height]
    return [min(1000, max(0, int(v))) for v in box]
