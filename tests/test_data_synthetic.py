"""The synthetic form generator: deterministic, FUNSD-shaped, boxes true to its images."""

from __future__ import annotations

import math

import datasets
import pytest
from PIL import Image

from distill.data.synthetic import make_synthetic
from distill.errors import DistillError
from distill.schema import LABELS, features


@pytest.fixture(scope="module")
def default_data() -> datasets.DatasetDict:
    return make_synthetic()


def snapshot(data: datasets.DatasetDict) -> dict:
    """Everything a form is made of, image bytes included."""
    result = {}
    for split, dataset in data.items():
        raw = dataset.cast_column("image", datasets.Image(decode=False))
        result[split] = [
            (row["id"], row["tokens"], row["bboxes"], row["ner_tags"], row["image"]["bytes"]) for row in raw
        ]
    return result


def test_schema_and_default_sizes(default_data):
    assert {split: len(ds) for split, ds in default_data.items()} == {"train": 48, "test": 16}
    for dataset in default_data.values():
        assert dataset.features == features()


def test_same_seed_same_forms_other_seed_other_forms():
    first = snapshot(make_synthetic(6, 2, seed=7))
    assert first == snapshot(make_synthetic(6, 2, seed=7))
    other = snapshot(make_synthetic(6, 2, seed=8))
    for split in first:
        for mine, theirs in zip(first[split], other[split], strict=True):
            assert mine[1] != theirs[1] and mine[4] != theirs[4]


def test_a_form_does_not_depend_on_how_many_forms_are_made():
    few, many = snapshot(make_synthetic(2, 1, seed=3)), snapshot(make_synthetic(5, 3, seed=3))
    assert few["train"] == many["train"][:2] and few["test"] == many["test"][:1]


def test_every_label_appears(default_data):
    for dataset in default_data.values():
        seen = {LABELS[tag] for tags in dataset["ner_tags"] for tag in tags}
        assert seen == set(LABELS)


@pytest.mark.parametrize("max_words", [1, 5, 40, 120, 3000])
def test_words_per_form_within_the_maximum(max_words):
    num_train = 1 if max_words == 3000 else 6
    data = make_synthetic(num_train, 1, max_words=max_words, seed=1)
    for dataset in data.values():
        for tokens, boxes, tags in zip(
            dataset["tokens"], dataset["bboxes"], dataset["ner_tags"], strict=True
        ):
            assert math.ceil(max_words / 2) <= len(tokens) <= max_words
            assert len(boxes) == len(tags) == len(tokens)
            assert all(token.strip() == token and token for token in tokens)


def test_tags_follow_bio_order(default_data):
    for tags in default_data["train"]["ner_tags"]:
        names = [LABELS[t] for t in tags]
        for previous, current in zip(["O", *names], names, strict=False):
            if current.startswith("I-"):
                assert previous[2:] == current[2:], names


def assert_boxes_cover_ink(form: dict) -> None:
    """Each box, scaled back with the image's own size, holds dark pixels: size and boxes agree."""
    image: Image.Image = form["image"]
    width, height = image.size
    gray = image.convert("L")
    for word, box in zip(form["tokens"], form["bboxes"], strict=True):
        assert all(0 <= v <= 1000 for v in box) and box[0] < box[2] and box[1] < box[3]
        left, top = math.floor(box[0] * width / 1000), math.floor(box[1] * height / 1000)
        right, bottom = math.ceil(box[2] * width / 1000) + 1, math.ceil(box[3] * height / 1000) + 1
        darkest, _ = gray.crop((left, top, right, bottom)).getextrema()
        assert darkest < 128, f"no ink for {word!r} at {box} in a {image.size} image"


@pytest.mark.parametrize("max_words", [120, 3000])
def test_images_have_the_size_their_boxes_were_normalised_with(max_words):
    data = make_synthetic(2, 1, max_words=max_words, seed=5, word_boxes=True)
    sizes = set()
    for dataset in data.values():
        for form in dataset:
            assert form["image"].mode == "RGB"
            sizes.add(form["image"].size)
            assert_boxes_cover_ink(form)
            # The footer sits at the foot of the page, so boxes span the normalised range.
            assert max(box[3] for box in form["bboxes"]) > 900
    if max_words == 3000:
        assert all(w > 600 and h > 800 for w, h in sizes)  # big forms get bigger pages


def test_segment_boxes_enclose_the_word_boxes():
    segments = make_synthetic(3, 1, seed=2)
    words = make_synthetic(3, 1, seed=2, word_boxes=True)
    for split in segments:
        for seg_form, word_form in zip(segments[split], words[split], strict=True):
            assert seg_form["tokens"] == word_form["tokens"]
            assert seg_form["ner_tags"] == word_form["ner_tags"]
            for box, word_box in zip(seg_form["bboxes"], word_form["bboxes"], strict=True):
                assert box[0] <= word_box[0] and box[1] <= word_box[1]
                assert box[2] >= word_box[2] and box[3] >= word_box[3]
            # Multi-word segments share one box.
            assert len({tuple(b) for b in seg_form["bboxes"]}) < len(seg_form["bboxes"])


@pytest.mark.parametrize("sizes", [(-1, 1, 10), (1, -1, 10), (1, 1, 0)])
def test_bad_sizes_are_a_distill_error(sizes):
    with pytest.raises(DistillError):
        make_synthetic(*sizes)
