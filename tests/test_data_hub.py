"""The default hub dataset on datasets 4: script refused -> parquet conversion -> FUNSD release archive.

Nothing here mocks datasets or the download: a real HTTP server on 127.0.0.1 plays the model hub
(a script dataset whose parquet revision does not exist, the answers the hub gives) and the FUNSD
site (a zip archive built from ../shared/data/funsd), so the errors are the ones datasets and
huggingface_hub really raise and the archive really travels over HTTP.
"""

from __future__ import annotations

import http.server
import io
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote

import datasets
import huggingface_hub.constants
import pytest

from distill.data import hub as data_hub
from distill.data import load_source
from distill.data.funsd import load_funsd_local
from distill.errors import DistillError
from tests.conftest import FUNSD

COMMIT = "0123456789abcdef0123456789abcdef01234567"
ARCHIVE_PATH = "/FUNSD/dataset.zip"
FORMS_PER_SPLIT = {"training_data": 3, "testing_data": 2}


def small_release(target: Path) -> Path:
    """The first forms of each split of the shared FUNSD copy, in the release layout."""
    if not FUNSD.is_dir():
        pytest.skip(f"needs the FUNSD release at {FUNSD}")
    for split, count in FORMS_PER_SPLIT.items():
        for kind in ("annotations", "images"):
            (target / split / kind).mkdir(parents=True)
        for ann in sorted((FUNSD / split / "annotations").glob("*.json"))[:count]:
            (target / split / "annotations" / ann.name).write_bytes(ann.read_bytes())
            image = FUNSD / split / "images" / f"{ann.stem}.png"
            (target / split / "images" / image.name).write_bytes(image.read_bytes())
    return target


def release_zip(release: Path) -> bytes:
    """Zipped like the official dataset.zip: everything under dataset/, plus macOS debris."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zipped:
        zipped.writestr("__MACOSX/dataset/training_data/._junk", b"\x00")
        for path in sorted(release.rglob("*")):
            if path.is_file():
                zipped.write(path, "dataset/" + str(path.relative_to(release)))
    return buffer.getvalue()


class FakeHub(http.server.BaseHTTPRequestHandler):
    """The hub's answers for a loading-script dataset with no parquet conversion; the archive too."""

    archive: bytes = b""
    requests: list[str]

    def do_HEAD(self) -> None:
        self.answer(body=False)

    def do_GET(self) -> None:
        self.answer(body=True)

    def answer(self, body: bool) -> None:
        self.requests.append(f"{self.command} {unquote(self.path)}")
        path = unquote(self.path).split("?")[0]
        if path == ARCHIVE_PATH:
            return self.send(200, self.archive, body)
        # /datasets/<owner>/<name>/resolve/<revision>/<file>
        parts = path.strip("/").split("/resolve/")
        if len(parts) == 2 and parts[0].startswith("datasets/"):
            revision, _, filename = parts[1].rpartition("/")
            script = parts[0].rpartition("/")[2] + ".py"  # a script dataset's script is named after it
            if revision == data_hub.PARQUET_REVISION:
                return self.send(404, b"Invalid rev id", body, {"X-Error-Code": "RevisionNotFound"})
            if filename in ("README.md", script):
                content = b"---\nlicense: other\n---\n" if filename == "README.md" else b"import datasets\n"
                headers = {"X-Repo-Commit": COMMIT, "ETag": f'"{filename}-etag"'}
                return self.send(200, content, body, headers)
            return self.send(404, b"Entry not found", body, {"X-Error-Code": "EntryNotFound"})
        return self.send(404, b"not found", body)

    def send(self, status: int, content: bytes, body: bool, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        if body:
            self.wfile.write(content)

    def log_message(self, *args: object) -> None:  # keep pytest's output clean
        pass


@pytest.fixture
def release(tmp_path: Path) -> Path:
    return small_release(tmp_path / "release")


@pytest.fixture
def server(release: Path) -> Iterator[tuple[str, list[str]]]:
    """(base URL, request log) of a server on a free port of 127.0.0.1, in a thread, shut down after."""
    handler = type("Handler", (FakeHub,), {"archive": release_zip(release), "requests": []})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", handler.requests
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


@pytest.fixture
def online(server, tmp_path: Path, monkeypatch) -> tuple[str, list[str]]:
    """Online against the local server: hub endpoint, caches in tmp, the archive URL overridden."""
    base, _ = server
    for module in (datasets.config, huggingface_hub.constants):
        monkeypatch.setattr(module, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", False, raising=False)
    monkeypatch.setattr(datasets.config, "HF_ENDPOINT", base)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "datasets-cache")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub-cache"))
    monkeypatch.setenv(data_hub.FUNSD_RELEASE_URL_ENV, base + ARCHIVE_PATH)
    return server


def go_offline(monkeypatch) -> None:
    for module in (datasets.config, huggingface_hub.constants):
        monkeypatch.setattr(module, "HF_HUB_OFFLINE", True)


def assert_same_forms(loaded: datasets.DatasetDict, expected: datasets.DatasetDict) -> None:
    for split in ("train", "test"):
        assert loaded[split].features == expected[split].features
        for column in ("id", "tokens", "bboxes", "ner_tags"):
            assert loaded[split][column] == expected[split][column], f"{split} {column}"
        assert loaded[split][0]["image"].size == expected[split][0]["image"].size


def test_datasets_refuses_the_script_and_the_archive_stands_in(online, release: Path, monkeypatch) -> None:
    _, requests = online
    # What datasets itself raises against this hub (the reason for the fallback), not a stand-in.
    with pytest.raises(RuntimeError, match="Dataset scripts are no longer supported"):
        datasets.load_dataset(data_hub.DEFAULT_HUB_DATASET)
    with pytest.raises(datasets.exceptions.DatasetNotFoundError, match="Revision .* doesn't exist"):
        datasets.load_dataset(data_hub.DEFAULT_HUB_DATASET, revision=data_hub.PARQUET_REVISION)
    requests.clear()

    data = load_source(data_hub.DEFAULT_HUB_DATASET)
    assert_same_forms(data, load_funsd_local(release))
    assert any(data_hub.PARQUET_REVISION in r for r in requests), "the parquet conversion was tried first"
    assert requests.count(f"GET {ARCHIVE_PATH}") == 1

    # Downloaded once: a second load, and one offline, take the archive from the cache.
    assert_same_forms(load_source(data_hub.DEFAULT_HUB_DATASET), load_funsd_local(release))
    go_offline(monkeypatch)
    assert_same_forms(load_source(data_hub.DEFAULT_HUB_DATASET), load_funsd_local(release))
    assert requests.count(f"GET {ARCHIVE_PATH}") == 1
    cache = data_hub.release_cache_dir()
    assert not [p for p in cache.rglob("*") if p.name.endswith((".tmp", ".incomplete"))], "no temporaries"


def test_the_archive_download_reads_like_the_local_release(online, release: Path) -> None:
    base, _ = online
    assert_same_forms(data_hub.load_funsd_release(base + ARCHIVE_PATH), load_funsd_local(release))


def test_another_script_dataset_without_parquet_is_a_clear_error(online) -> None:
    with pytest.raises(DistillError, match="is a loading script.*no parquet conversion.*--data PATH"):
        load_source("someone/script-forms")


def test_unreachable_archive_is_a_clear_error(online, monkeypatch) -> None:
    base, _ = online
    monkeypatch.setenv(data_hub.FUNSD_RELEASE_URL_ENV, base + "/FUNSD/missing.zip")
    with pytest.raises(DistillError) as caught:
        load_source(data_hub.DEFAULT_HUB_DATASET)
    assert "/FUNSD/missing.zip" in str(caught.value) and "--data PATH" in str(caught.value)


def test_offline_without_a_cached_archive_is_todays_clear_error(tmp_path: Path, monkeypatch) -> None:
    go_offline(monkeypatch)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "empty-cache")
    with pytest.raises(DistillError) as caught:
        load_source(data_hub.DEFAULT_HUB_DATASET)
    message = str(caught.value)
    assert "could not reach the Hugging Face hub" in message and "could not reach the FUNSD" in message
    assert "--data PATH" in message and "--data synthetic" in message


def test_a_parquet_conversion_is_used_before_the_archive(
    online, release: Path, tmp_path, monkeypatch
) -> None:
    """Where the hub has the parquet conversion, it is what loads (the archive is never fetched).

    The plain load meets the real script refusal from the server; only the parquet revision is
    served from local parquet files (written by datasets, as the hub's conversion is), since
    the server does not implement the hub's file-listing API.
    """
    _, requests = online
    local = load_funsd_local(release)
    files = {}
    for split in ("train", "test"):
        files[split] = str(tmp_path / f"{split}-0000.parquet")
        local[split].to_parquet(files[split])
    real_load = datasets.load_dataset

    def hub_with_parquet(name: str, revision: str | None = None) -> datasets.DatasetDict:
        if revision == data_hub.PARQUET_REVISION:
            return real_load("parquet", data_files=files, cache_dir=str(tmp_path / "parquet-cache"))
        return real_load(name, revision=revision)

    monkeypatch.setattr(datasets, "load_dataset", hub_with_parquet)
    assert_same_forms(load_source(data_hub.DEFAULT_HUB_DATASET), local)
    assert any(r.endswith("funsd-layoutlmv3.py") for r in requests), "the script was refused first"
    assert not any(ARCHIVE_PATH in r for r in requests)
