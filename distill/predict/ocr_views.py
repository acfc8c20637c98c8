"""OCR views of forms: what Tesseract reads on each form's own page image, as forms of the same schema.

The models are trained on an annotation's clean words and entity segments, then served Tesseract's
words and lines. An OCR view is the input `distill.predict` will see for a training page: Tesseract's
words (at one setting: as is, enlarged...), each with its box in the box mode the run trains with.
A view's tag for each OCR word comes from the gold word whose box covers most of the OCR word's
(distill/predict/ocr_align.py's overlap rule, from the OCR side): its entity type, B- where the gold
entity changes from the OCR word before, I- where it continues; O where no gold word covers it. The
transfer set (distill/training/transfer_set.py) has the teacher label the views; the OCR study
(distill/studies/ocr.py) reads the same pages the same way.

Only the forms given are read (the training split's, for training): never a test page.
"""

from __future__ import annotations

import hashlib
import io
import json
import multiprocessing
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import datasets
from PIL import Image
from tqdm.auto import tqdm

from distill import atomic
from distill.data.funsd import enclosing_box, normalize_box
from distill.labels import OUTSIDE, tag_names
from distill.predict.ocr import OcrOptions, OcrWord, ocr_words
from distill.predict.ocr_align import match_words


def view_name(options: OcrOptions) -> str:
    """A setting as a form id's suffix: `ocr`, `ocr-x2`."""
    return "ocr" if options.scale == 1 else f"ocr-x{options.scale:g}"


def entity_ids(tags: Sequence[str]) -> list[int | None]:
    """Each gold word's entity (a B- and its I-s share one), None for O words."""
    out: list[int | None] = []
    current = -1
    for i, tag in enumerate(tags):
        if tag == OUTSIDE:
            out.append(None)
            continue
        if tag.startswith("B-") or i == 0 or out[-1] is None or tags[i - 1][2:] != tag[2:]:
            current += 1
        out.append(current)
    return out


def ocr_tags(
    ocr_boxes: Sequence[Sequence[float]], gold_boxes: Sequence[Sequence[float]], tags: Sequence[str]
) -> list[str]:
    """The OCR words' tags from the gold words that cover them (see the module docstring)."""
    entities = entity_ids(tags)
    out: list[str] = []
    previous: int | None = None
    for match in match_words(ocr_boxes, gold_boxes):
        entity = entities[match] if match is not None else None
        if entity is None:
            out.append(OUTSIDE)
        else:
            out.append(f"{'I' if entity == previous else 'B'}-{tags[match][2:]}")
        previous = entity
    return out


def _image(value: Any) -> Image.Image:
    """A page from a datasets Image column, decoded or not (bytes or a path)."""
    if isinstance(value, Image.Image):
        return value.convert("RGB")
    if value.get("bytes"):
        return Image.open(io.BytesIO(value["bytes"])).convert("RGB")
    with Image.open(value["path"]) as image:
        return image.convert("RGB")


def _page_key(value: Any, options: OcrOptions) -> str:
    digest = hashlib.sha256(json.dumps(asdict(options), sort_keys=True).encode())
    if value.get("bytes"):
        digest.update(value["bytes"])
    else:
        digest.update(Path(value["path"]).read_bytes())
    return digest.hexdigest()[:20]


def _read(job: tuple[Any, OcrOptions]) -> tuple[list[OcrWord], tuple[int, int]]:
    value, options = job
    page = _image(value)
    return ocr_words(page, options)[0], page.size


def read_pages(
    forms: datasets.Dataset, options: OcrOptions, workers: int = 1, cache: Path | None = None
) -> list[tuple[list[OcrWord], tuple[int, int]] | None]:
    """Tesseract's words and the page size of each form's image (None: the form has no image).

    `cache`: a directory of one JSON per page and setting, so a resumed run or a second study reads
    each page once.
    """
    raw = forms.cast_column("image", datasets.Image(decode=False))["image"]
    results: list[tuple[list[OcrWord], tuple[int, int]] | None] = [None] * len(raw)
    todo = []
    for i, value in enumerate(raw):
        if value is None:
            continue
        key = _page_key(value, options) if cache is not None else None
        if key is not None and (cache / f"{key}.json").is_file():
            saved = json.loads((cache / f"{key}.json").read_text())
            results[i] = (
                [OcrWord(w[0], tuple(w[1]), w[2], w[3]) for w in saved["words"]],
                tuple(saved["size"]),
            )
        else:
            todo.append((i, value, key))
    jobs = [(value, options) for _, value, _ in todo]
    if workers > 1 and len(jobs) > 1:
        methods = multiprocessing.get_all_start_methods()
        with multiprocessing.get_context("fork" if "fork" in methods else "spawn").Pool(workers) as pool:
            read = list(tqdm(pool.imap(_read, jobs), total=len(jobs), desc="OCR (views)", disable=None))
    else:
        read = [_read(job) for job in tqdm(jobs, desc="OCR (views)", disable=None)]
    for (i, _, key), (words, size) in zip(todo, read, strict=True):
        results[i] = (words, size)
        if key is not None and cache is not None:
            saved = {"words": [[w.text, list(w.box), w.segment, w.conf] for w in words], "size": list(size)}
            atomic.write_json(cache / f"{key}.json", saved)
    return results


def ocr_views(
    forms: datasets.Dataset,
    options: OcrOptions,
    word_boxes: bool,
    gold_word_boxes: Sequence[Sequence[Sequence[float]]] | None = None,
    workers: int = 1,
    cache: Path | None = None,
) -> datasets.Dataset:
    """One OCR view of every form with an image and words read (ids `<form id>#<view_name>`).

    `word_boxes`: each OCR word's own box (else its Tesseract line's), as the run trains.
    `gold_word_boxes`: the forms' gold word boxes where `forms` holds segment boxes (their tags are
    then matched box to box; segment boxes, shared by a segment's words, give the same types).
    """
    names = tag_names(forms, "the forms to read")
    pages = read_pages(forms, options, workers, cache)
    raw = forms.cast_column("image", datasets.Image(decode=False))
    suffix = view_name(options)
    rows = []
    for i, (form, page) in enumerate(zip(raw, pages, strict=True)):
        if page is None or not page[0]:
            continue
        words, size = page
        own = [normalize_box(list(w.box), size) for w in words]
        segments: dict[int, list[list[float]]] = {}
        for w in words:
            segments.setdefault(w.segment, []).append(list(w.box))
        lines = {s: normalize_box(enclosing_box(b), size) for s, b in segments.items()}
        boxes = own if word_boxes else [lines[w.segment] for w in words]
        gold = gold_word_boxes[i] if gold_word_boxes is not None else form["bboxes"]
        tags = ocr_tags(own, gold, [names[t] for t in form["ner_tags"]])
        rows.append({**form, "id": f"{form['id']}#{suffix}", "tokens": [w.text for w in words],
                     "bboxes": [list(map(int, b)) for b in boxes], "ner_tags": [names.index(t) for t in tags]})  # fmt: skip
    columns = {name: [row[name] for row in rows] for name in raw.column_names}
    out = datasets.Dataset.from_dict(columns, features=raw.features)
    return out.cast_column("image", datasets.Image(decode=True))
