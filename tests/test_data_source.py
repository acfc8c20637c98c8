"""--data dispatch: synthetic, a FUNSD release directory, or a hub id (offline here: a clear error)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import datasets
import huggingface_hub.constants
import pytest
from PIL import Image

from distill.data import describe_source, load_source, source_kind, synthetic_split_sizes
from distill.data import hub as data_hub
from distill.data.synthetic import make_synthetic
from distill.errors import DistillError
from distill.schema import LABELS, features


@pytest.fixture
def release(tmp_path: Path) -> Path:
    root = tmp_path / "my funsd"
    form = {
        "form": [
            {
                "id": 0,
                "label": "header",
                "box": [0, 0, 50, 10],
                "words": [{"text": "FORM", "box": [0, 0, 50, 10]}],
            }
        ]
    }
    for split in ("training_data", "testing_data"):
        (root / split / "annotations").mkdir(parents=True)
        (root / split / "images").mkdir()
        (root / split / "annotations" / "a.json").write_text(json.dumps(form))
        Image.new("L", (100, 100), 255).save(root / split / "images" / "a.png")
    return root


@pytest.fixture
def offline(monkeypatch):
    """Offline mode however pytest was started: both libraries read the variable at import time."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)


@pytest.mark.parametrize(
    ("source", "kind"),
    [
        ("synthetic", "synthetic"),
        ("nielsr/funsd-layoutlmv3", "hub"),
        ("funsd", "hub"),
        ("./funsd", "local"),
        ("/data/funsd", "local"),
        ("~/funsd", "local"),
        ("data/funsd/release", "local"),
        ("../shared/data/funsd", "local"),
    ],
)
def test_source_kind(source, kind):
    assert source_kind(source) == kind


def test_an_existing_directory_named_like_a_hub_id_is_local(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "owner" / "name").mkdir(parents=True)
    assert source_kind("owner/name") == "local"
    assert source_kind("owner/other") == "hub"


@pytest.mark.parametrize("source", ["./no-such-funsd", "/no/such/funsd", "no/such/funsd"])
def test_a_path_that_does_not_exist(source):
    with pytest.raises(DistillError, match="no such directory"):
        load_source(source)


def test_empty_source():
    with pytest.raises(DistillError):
        load_source(" ")


def test_local_release(release):
    data = load_source(str(release), word_boxes=True)
    assert data["train"][0]["tokens"] == ["FORM"] and data["test"][0]["bboxes"] == [[0, 0, 500, 100]]
    assert describe_source(str(release), word_boxes=True) == f"FUNSD release at {release} (word boxes)"


def test_synthetic_sizes_and_options():
    data = load_source("synthetic", synthetic_forms=8, max_words=30, seed=4)
    assert (len(data["train"]), len(data["test"])) == (6, 2)
    assert data["train"]["tokens"] == make_synthetic(6, 2, max_words=30, seed=4)["train"]["tokens"]
    assert synthetic_split_sizes(None) == (48, 16)
    assert describe_source("synthetic") == "synthetic (seed 0, 48/16 forms, <= 120 words, segment boxes)"
    with pytest.raises(DistillError):
        load_source("synthetic", synthetic_forms=1)


def test_hub_offline_is_a_clear_error_and_fast(offline):
    start = time.monotonic()
    with pytest.raises(DistillError) as caught:
        load_source("docdistill-tests/no-such-dataset")
    message = str(caught.value)
    assert "could not reach the Hugging Face hub" in message
    assert "--data PATH" in message and "--data synthetic" in message
    assert time.monotonic() - start < 20


def test_hub_has_segment_boxes_only():
    with pytest.raises(DistillError, match="segment boxes only"):
        load_source("nielsr/funsd-layoutlmv3", word_boxes=True)


def fake_hub(names: list[str]) -> datasets.DatasetDict:
    """What load_dataset returns for the hub copy: its schema, maybe an extra column."""
    feats = datasets.Features(
        {
            "id": datasets.Value("string"),
            "tokens": datasets.Sequence(datasets.Value("string")),
            "bboxes": datasets.Sequence(datasets.Sequence(datasets.Value("int32"))),
            "ner_tags": datasets.Sequence(datasets.ClassLabel(names=names)),
            "image": datasets.Image(),
            "extra": datasets.Value("string"),
        }
    )
    image = Image.new("RGB", (8, 8), "white")
    row = {"id": ["0"], "tokens": [["Date:"]], "bboxes": [[[1, 2, 3, 4]]], "ner_tags": [[3]]}
    row |= {"image": [image], "extra": ["x"]}
    split = datasets.Dataset.from_dict(row, features=feats)
    return datasets.DatasetDict({"train": split, "test": split})


def test_hub_dataset_is_cast_to_the_schema(monkeypatch):
    monkeypatch.setattr(datasets, "load_dataset", lambda name: fake_hub(LABELS))
    data = load_source("nielsr/funsd-layoutlmv3")
    assert data["train"].features == features() and data["test"][0]["ner_tags"] == [3]


def test_hub_dataset_with_other_tags_keeps_the_feature_names(monkeypatch):
    monkeypatch.setattr(datasets, "load_dataset", lambda name: fake_hub(list(reversed(LABELS))))
    data = load_source("someone/other-forms")
    assert data["train"].features["ner_tags"].feature.names == list(reversed(LABELS))


def test_hub_dataset_with_tags_that_are_not_bio_is_refused(monkeypatch):
    monkeypatch.setattr(datasets, "load_dataset", lambda name: fake_hub(["O", "DATE", "NAME", "X"]))
    with pytest.raises(
        DistillError, match="'DATE' in hub dataset someone/other-forms split train is not a BIO tag"
    ):
        load_source("someone/other-forms")


def test_unknown_hub_dataset(monkeypatch):
    def not_found(name):
        raise datasets.exceptions.DatasetNotFoundError(f"Dataset '{name}' doesn't exist on the Hub")

    monkeypatch.setattr(datasets, "load_dataset", not_found)
    with pytest.raises(DistillError, match="no dataset someone/nothing on the Hugging Face hub"):
        load_source("someone/nothing")


def test_network_failure_deep_in_the_chain_reads_as_unreachable():
    class ConnectTimeout(Exception):  # the name requests and httpx use
        pass

    try:
        try:
            raise ConnectTimeout("timed out")
        except ConnectTimeout as inner:
            raise RuntimeError("download failed") from inner
    except RuntimeError as err:
        assert "could not reach" in str(data_hub._hub_error("a/b", err))
