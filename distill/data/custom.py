"""The user's own documents in the FUNSD annotation layout, with any label names, images optional.

Layout: PATH/{training_data,testing_data}/annotations/NAME.json (+ images/NAME.png|jpg, optional).
Each annotation is FUNSD's {"form": [segment, ...]}, a segment {"label", "words": [{"text", "box"}]};
labels are any names (dotted ones too: menu.nm); `other` or `O` is outside any entity. Entity
types are collected from the training split and sorted; a type only the test split uses is an
error naming it and its files.

Boxes go to 0..1000 by, in this order of preference: the page image's size, a page size the
annotation gives ("width"/"height", or "image_size"/"size" as {"width", "height"} or [w, h]),
or else the extent of the form's own boxes (its right-most and lowest edge become 1000). The
split's description says how many forms took each way; reports carry it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import datasets

from distill.data.funsd import (
    SPLIT_DIRS,
    _read_segments,
    _release_root,
    _segment_words,
    enclosing_box,
    image_size,
    normalize_box,
)
from distill.errors import DistillError
from distill.labels import LabelSet, check_type_name
from distill.schema import features

OUTSIDE_NAMES = {"other", "o", "outside"}  # FUNSD's `other`, and the obvious spellings of O
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
LAYOUT_HINT = "expected training_data|testing_data/annotations/*.json (images/ optional)"


def is_funsd_release(path: str | Path) -> bool:
    """Whether a directory is a FUNSD release proper: FUNSD's four labels only, with images/.

    Such a directory goes to the FUNSD reader (the published FUNSD pipeline, images required);
    anything else in the annotation layout comes here (see not_funsd_reason).
    """
    return not_funsd_reason(path) is None


FUNSD_SEGMENT_LABELS = frozenset({"header", "question", "answer", "other"})


def not_funsd_reason(path: str | Path) -> str | None:
    """Why a directory in the annotation layout is not read as a FUNSD release, or None if it is one.

    Only segments with a word count: a label on a segment whose words are all blank labels nothing,
    so it cannot turn a FUNSD release into "your own labels" (it did: the labels then came out
    sorted, answer, header, question, instead of FUNSD's order).
    """
    root = Path(path).expanduser()
    for dirname in SPLIT_DIRS.values():
        split = root / dirname
        if not (split / "images").is_dir():
            return f"{dirname}/images/ is missing (a FUNSD release has every page image)"
        for ann in sorted((split / "annotations").glob("*.json")):
            try:
                segments = _read_segments(ann)
            except DistillError:
                return None  # a broken file: the FUNSD reader names it
            for segment in segments:
                label = segment.get("label")
                if label not in FUNSD_SEGMENT_LABELS and _has_words(segment):
                    return f"label {label!r} in {dirname}/annotations/{ann.name} is not one of FUNSD's"
    return None


def _has_words(segment: dict[str, Any]) -> bool:
    words = segment.get("words")
    if not isinstance(words, list):
        return True  # malformed: let a reader name it
    return any(
        not isinstance(w, dict) or not isinstance(w.get("text"), str) or w["text"].strip() for w in words
    )


def load_custom_local(path: str | Path, word_boxes: bool = False) -> datasets.DatasetDict:
    """Both splits, tags from the training split's labels (sorted); descriptions say how boxes were scaled."""
    root = _release_root(path)
    reason = not_funsd_reason(root)
    read = {split: _read_split(root / dirname, word_boxes) for split, dirname in SPLIT_DIRS.items()}
    train_types = sorted({t for form in read["train"] for t in form["types"]})
    if not train_types:
        raise DistillError("empty label set: every word of the training split is `other`/O", root)
    unseen = sorted({t for form in read["test"] for t in form["types"]} - set(train_types))
    if unseen:
        files = [form["file"] for form in read["test"] if set(unseen) & form["types"]]
        raise DistillError(
            f"label(s) {', '.join(unseen)} occur in the test split but never in training "
            f"(files: {', '.join(files[:5])}{' ...' if len(files) > 5 else ''})",
            root,
        )
    labels = LabelSet(tuple(train_types))
    feats = features(labels.tags)
    splits = {}
    for split, forms in read.items():
        rows = {name: [f[name] for f in forms] for name in ("id", "tokens", "bboxes", "image")}
        rows["ner_tags"] = [[labels.label2id[t] for t in f["tags"]] for f in forms]
        ways: dict[str, int] = {}
        for f in forms:
            ways[f["scaled_by"]] = ways.get(f["scaled_by"], 0) + 1
        scaled = ", ".join(f"{n} by {way}" for way, n in sorted(ways.items()))
        description = (
            f"FUNSD-layout {SPLIT_DIRS[split]} at {root}: {len(forms)} forms, labels {labels.option()}\n"
            f"note: {split} boxes normalised to 0..1000: {scaled}"
        )
        if split == "train" and reason:
            description += (
                "\nnote: read as your own documents in the FUNSD layout (entity types from the training "
                f"split, sorted), not as a FUNSD release: {reason}"
            )
        wordless = sorted(
            {t for f in forms for t in f["wordless_types"]} - {t for f in forms for t in f["types"]}
        )
        if wordless:
            description += (
                f"\nnote: type(s) {', '.join(wordless)} only on segments without words in the {split} split: "
                "no word carries them, ignored"
            )
        info = datasets.DatasetInfo(description=description, features=feats)
        splits[split] = datasets.Dataset.from_dict(rows, features=feats, info=info)
    return datasets.DatasetDict(splits)


def _read_split(split_dir: Path, word_boxes: bool) -> list[dict[str, Any]]:
    ann_dir = split_dir / "annotations"
    if not ann_dir.is_dir():
        raise DistillError(f"missing directory ({LAYOUT_HINT})", ann_dir)
    files = sorted(ann_dir.glob("*.json"))
    if not files:
        raise DistillError(f"no annotation files (*.json) ({LAYOUT_HINT})", ann_dir)
    return [_read_form(f, split_dir / "images", word_boxes) for f in files]


def _read_form(ann_file: Path, img_dir: Path, word_boxes: bool) -> dict[str, Any]:
    segments = _read_segments(ann_file)
    words: list[str] = []
    boxes: list[list[float]] = []
    tags: list[str] = []
    wordless: set[str] = set()
    for index, segment in enumerate(segments):
        where = f"segment {segment.get('id', index)}"
        entity = _entity_type(segment.get("label"), ann_file, where)
        kept = [(text, box) for text, box in _segment_words(segment, ann_file, where) if text.strip()]
        if not kept:
            wordless |= {entity} if entity else set()
            continue
        seg_boxes = [box for _, box in kept]
        if not word_boxes:
            seg_boxes = [enclosing_box(seg_boxes)] * len(seg_boxes)
        words += [text for text, _ in kept]
        boxes += seg_boxes
        tags += ["O"] * len(kept) if entity is None else [f"B-{entity}"] + [f"I-{entity}"] * (len(kept) - 1)
    image = next(
        (
            img_dir / f"{ann_file.stem}{s}"
            for s in IMAGE_SUFFIXES
            if (img_dir / f"{ann_file.stem}{s}").is_file()
        ),
        None,
    )
    size, scaled_by = _page_size(ann_file, image, boxes)
    return {
        "id": ann_file.stem,
        "file": str(ann_file),
        "tokens": words,
        "bboxes": [normalize_box(b, size) for b in boxes],
        "tags": tags,
        "types": {t[2:] for t in tags if t != "O"},
        "wordless_types": wordless,
        "image": str(image.resolve()) if image is not None else None,
        "scaled_by": scaled_by,
    }


def _entity_type(label: Any, ann_file: Path, where: str) -> str | None:
    if not isinstance(label, str) or not label.strip():
        raise DistillError(f"{where}: 'label' must be a non-empty string, got {label!r}", ann_file)
    if label.strip().lower() in OUTSIDE_NAMES:
        return None
    try:
        return check_type_name(label)
    except DistillError as err:
        raise DistillError(f"{where}: {err}", ann_file) from err


def _page_size(
    ann_file: Path, image: Path | None, boxes: list[list[float]]
) -> tuple[tuple[float, float], str]:
    """(width, height) to normalise by, and which way it was found."""
    if image is not None:
        return image_size(image), "the page image"
    data = _read_json_object(ann_file)
    for key in ("image_size", "size", "page_size"):
        given = data.get(key)
        if isinstance(given, dict) and _positive(given.get("width"), given.get("height")):
            return (float(given["width"]), float(given["height"])), "the page size in the annotation"
        if isinstance(given, list) and len(given) == 2 and _positive(*given):
            return (float(given[0]), float(given[1])), "the page size in the annotation"
    if _positive(data.get("width"), data.get("height")):
        return (float(data["width"]), float(data["height"])), "the page size in the annotation"
    width = max((b[2] for b in boxes), default=0)
    height = max((b[3] for b in boxes), default=0)
    if not boxes:
        return (1.0, 1.0), "the extent of their boxes (no image, no page size)"
    if not _positive(width, height):
        raise DistillError("no image, no page size and boxes without extent: cannot normalise", ann_file)
    return (float(width), float(height)), "the extent of their boxes (no image, no page size)"


def _read_json_object(ann_file: Path) -> dict[str, Any]:
    import json

    return json.loads(ann_file.read_text(encoding="utf-8"))  # parsed once already by _read_segments


def _positive(*values: Any) -> bool:
    return all(isinstance(v, int | float) and not isinstance(v, bool) and v > 0 for v in values)
