"""Read a local copy of the official FUNSD release into the word-level schema.

Layout: PATH/{training_data,testing_data}/{annotations/NAME.json, images/NAME.png}.
The result matches the hub copy (nielsr/funsd-layoutlmv3) word for word: empty words
dropped, `other` -> O, B-/I- per segment, each word given its segment's box (the box
around the segment's kept words, as the hub's builder computes it), normalised to
0..1000 by truncation. Only `id` differs: the file stem here, a running number there.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets
from PIL import Image, UnidentifiedImageError

from distill.errors import DistillError
from distill.schema import SEGMENT_LABEL_TO_TYPE, features, segment_tags

SPLIT_DIRS: dict[str, str] = {"train": "training_data", "test": "testing_data"}
LAYOUT_HINT = (
    "expected the FUNSD release layout: training_data|testing_data/annotations/*.json + images/*.png"
)

Box = list[int]


@dataclass(frozen=True)
class SplitStats:
    """What reading one split kept and dropped, for reports."""

    forms: int
    words: int
    dropped_empty: int

    def describe(self) -> str:
        return f"{self.forms} forms, {self.words} words ({self.dropped_empty} empty words dropped)"


def load_funsd_local(path: str | Path, word_boxes: bool = False) -> datasets.DatasetDict:
    """Both splits of a FUNSD release directory as a DatasetDict with the hub schema.

    The per-split counts are in each split's `info.description`.
    """
    root = _release_root(path)
    splits = {}
    for split, dirname in SPLIT_DIRS.items():
        forms, dropped = read_funsd_split(root / dirname, word_boxes=word_boxes)
        stats = SplitStats(len(forms), sum(len(f["tokens"]) for f in forms), dropped)
        description = f"FUNSD {dirname} at {root}: {stats.describe()}"
        note = wordless_note(forms, dirname)
        if note:
            description += f"\nnote: {note}"
        info = datasets.DatasetInfo(description=description, features=features())
        splits[split] = _to_dataset(forms, info)
    return datasets.DatasetDict(splits)


def wordless_note(forms: list[dict[str, Any]], dirname: str) -> str | None:
    """Labels carried only by segments without a word (no word can learn them): named, with a file each."""
    worded = {label for form in forms for label in form["worded_labels"]}
    files: dict[str, str] = {}
    for form in forms:
        for label in form["wordless_labels"]:
            if label not in worded:
                files.setdefault(label, f"{dirname}/annotations/{form['id']}.json")
    if not files:
        return None
    named = ", ".join(
        f"{label!r} ({where})" for label, where in sorted(files.items(), key=lambda kv: str(kv[0]))
    )
    return f"label(s) {named} only on segments without words in {dirname}: no word carries them, ignored"


def read_funsd_split(split_dir: str | Path, word_boxes: bool = False) -> tuple[list[dict[str, Any]], int]:
    """The forms of one split directory, sorted by file name, and how many empty words were dropped.

    Each form is a dict with the schema's columns; `image` is the PNG's absolute path.
    """
    split_dir = Path(split_dir)
    ann_dir, img_dir = split_dir / "annotations", split_dir / "images"
    for needed in (split_dir, ann_dir):
        if not needed.is_dir():
            raise DistillError(f"missing directory ({LAYOUT_HINT})", needed)
    ann_files = sorted(ann_dir.glob("*.json"))
    if not ann_files:
        raise DistillError(f"no annotation files (*.json) ({LAYOUT_HINT})", ann_dir)
    forms, dropped = [], 0
    for ann_file in ann_files:
        form, n_dropped = read_funsd_form(ann_file, img_dir / f"{ann_file.stem}.png", word_boxes)
        forms.append(form)
        dropped += n_dropped
    return forms, dropped


def read_funsd_form(ann_file: Path, image_file: Path, word_boxes: bool = False) -> tuple[dict[str, Any], int]:
    """One form: its words, boxes and tags, and the number of empty words dropped."""
    segments = _read_segments(ann_file)
    if not image_file.is_file():
        raise DistillError(f"annotation has no image: {image_file} does not exist", ann_file)
    size = image_size(image_file)
    tokens: list[str] = []
    bboxes: list[Box] = []
    tags: list[int] = []
    dropped = 0
    wordless: list[Any] = []  # labels of segments without a word: they label nothing
    worded: set[str] = set()
    for index, segment in enumerate(segments):
        where = f"segment {segment.get('id', index)}"
        words = _segment_words(segment, ann_file, where)
        # The hub keeps the raw text ("the " stays "the "); strip() only decides emptiness.
        kept = [(text, box) for text, box in words if text.strip()]
        dropped += len(words) - len(kept)
        if not kept:
            label = segment.get("label")
            wordless.append(label if isinstance(label, str) else repr(label))
            continue
        label = _segment_label(segment, ann_file, where)
        worded.add(label)
        boxes = [box for _, box in kept]
        if not word_boxes:
            boxes = [enclosing_box(boxes)] * len(boxes)
        tokens += [text for text, _ in kept]
        bboxes += [normalize_box(box, size) for box in boxes]
        tags += segment_tags(label, len(kept))
    form = {"id": ann_file.stem, "tokens": tokens, "bboxes": bboxes, "ner_tags": tags}
    form["image"] = str(image_file.resolve())
    form["wordless_labels"], form["worded_labels"] = wordless, worded  # not columns: for wordless_note
    return form, dropped


def image_size(image_file: Path) -> tuple[int, int]:
    """(width, height) from the header; verify() also reads the chunks, so a corrupt file fails here."""
    try:
        with Image.open(image_file) as image:
            size = image.size
            image.verify()
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as err:
        raise DistillError(f"image does not open: {err}", image_file) from err
    if size[0] <= 0 or size[1] <= 0:
        raise DistillError(f"image has no pixels (size {size})", image_file)
    return size


def normalize_box(box: list[float], size: tuple[int, int]) -> Box:
    """Pixels -> 0..1000 (truncated like the hub's builder), clamped so a box past the edge stays valid."""
    width, height = size
    scaled = [1000 * box[0] / width, 1000 * box[1] / height, 1000 * box[2] / width, 1000 * box[3] / height]
    # Clamped before int(): the same truncation, and a page size near zero cannot overflow it.
    return [int(min(1000.0, max(0.0, v))) for v in scaled]


def enclosing_box(boxes: list[list[float]]) -> list[float]:
    """The smallest box around all the given boxes."""
    return [
        min(b[0] for b in boxes),
        min(b[1] for b in boxes),
        max(b[2] for b in boxes),
        max(b[3] for b in boxes),
    ]


def _release_root(path: str | Path) -> Path:
    root = Path(path).expanduser()
    if not root.exists():
        raise DistillError(f"no such directory ({LAYOUT_HINT})", root)
    if not root.is_dir():
        raise DistillError(f"not a directory ({LAYOUT_HINT})", root)
    return root


def _read_segments(ann_file: Path) -> list[dict[str, Any]]:
    try:
        data = json.loads(ann_file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DistillError(f"annotation is not valid JSON: {err}", ann_file) from err
    except OSError as err:
        raise DistillError(f"annotation cannot be read: {err}", ann_file) from err
    segments = data.get("form") if isinstance(data, dict) else None
    if not isinstance(segments, list) or not all(isinstance(s, dict) for s in segments):
        raise DistillError('annotation must be an object {"form": [segment, ...]}', ann_file)
    return segments


def _segment_label(segment: dict[str, Any], ann_file: Path, where: str) -> str:
    label = segment.get("label")
    if label not in SEGMENT_LABEL_TO_TYPE:
        known = ", ".join(SEGMENT_LABEL_TO_TYPE)
        raise DistillError(f"{where}: unknown label {label!r} (expected one of {known})", ann_file)
    return label


def _segment_words(segment: dict[str, Any], ann_file: Path, where: str) -> list[tuple[str, list[float]]]:
    """(text, pixel box) of every word, empty ones included; checks every box, the segment's too."""
    if "box" in segment:
        _check_box(segment["box"], ann_file, f"{where} box")
    words = segment.get("words")
    if not isinstance(words, list):
        raise DistillError(f"{where}: 'words' must be a list", ann_file)
    result = []
    for j, word in enumerate(words):
        text = word.get("text") if isinstance(word, dict) else None
        if not isinstance(text, str):
            raise DistillError(f"{where} word {j}: 'text' must be a string", ann_file)
        result.append((text, _check_box(word.get("box"), ann_file, f"{where} word {j} ({text!r}) box")))
    return result


# No page is a billion pixels wide: a coordinate beyond it is a broken annotation (1e308 overflowed
# the 0..1000 scaling into infinity).
MAX_COORDINATE = 1e9


def _check_box(box: Any, ann_file: Path, where: str) -> list[float]:
    def is_number(v: Any) -> bool:
        return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)

    if not (isinstance(box, list) and len(box) == 4 and all(is_number(v) for v in box)):
        raise DistillError(f"{where} must be four numbers [x0, y0, x1, y1], got {box!r}", ann_file)
    if any(abs(v) > MAX_COORDINATE for v in box):
        raise DistillError(
            f"{where} has a coordinate beyond any page (more than {MAX_COORDINATE:.0e} pixels): {box!r}",
            ann_file,
        )
    return box


def _to_dataset(forms: list[dict[str, Any]], info: datasets.DatasetInfo) -> datasets.Dataset:
    columns = {name: [form[name] for form in forms] for name in features()}
    return datasets.Dataset.from_dict(columns, features=features(), info=info)
