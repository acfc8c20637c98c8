"""End-to-end: the training CLI as users run it (subprocesses, temporary directories)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest
from safetensors.torch import load_file

from distill.config import TrainConfig
from distill.predict import Predictor
from distill.schema import LABELS
from tests.conftest import REPO, run_cli

SMALL = ["--preset", "quickstart", "--synthetic-forms", "16", "--max-words", "80", "--epochs", "2"]


def run_files(run: Path) -> set[str]:
    """The run's files; a teacher-cache file by its folder alone, since its name hashes the teacher's
    exact weights, which two processes' BLAS may round apart (RESUME_ATOL)."""
    files = {p.relative_to(run) for p in run.rglob("*") if p.is_file()}
    return {"teacher-cache/<key>.npz" if p.parent.name == "teacher-cache" else str(p) for p in files}


def assert_students_share_one_vocabulary(run: Path) -> None:
    """The tiny WordPiece trainer is not deterministic: the run trains it once and every student loads it."""
    vocabularies = {(run / name / "vocab.txt").read_text() for name in ("student", "student-baseline")}
    assert vocabularies == {(run / "tokenizers" / "student" / "vocab.txt").read_text()}


def test_quickstart_writes_the_whole_run_directory(quickstart_run: Path) -> None:
    run = quickstart_run
    for name in ("teacher", "student", "student-baseline"):
        assert (run / name / "config.json").is_file() and (run / name / "model.safetensors").is_file()
    assert (run / "teacher" / "preprocessor_config.json").is_file(), (
        "the teacher keeps its LayoutLMv3 processor"
    )
    config = tomllib.loads((run / "config.toml").read_text())
    assert set(config) == {f.name for f in fields(TrainConfig)}, "every option is written out"
    metrics = json.loads((run / "metrics.json").read_text())
    for name, record in metrics["models"].items():
        for key in (
            "precision",
            "recall",
            "f1",
            "word_accuracy",
            "per_type",
            "params",
            "size_bytes",
            "train_seconds",
        ):
            assert key in record, f"{name} lacks {key}"
        assert set(record["per_type"]) == {"HEADER", "QUESTION", "ANSWER"}
    assert metrics["models"]["teacher"]["f1"] > 0.6, "the teacher learns the synthetic forms"
    assert metrics["models"]["student"]["f1"] > 0.5, "the distilled student learns them too"
    assert metrics["test_words"] > 0
    assert {"seed", "data", "versions", "teacher_cache_seconds", "distillation"} <= set(metrics)
    terms = [(t["term"], t["weight"]) for t in metrics["distillation"]["terms"]]
    assert terms == [("hard_labels", 0.5), ("soft_targets", 0.5)], "each loss term with its weight"
    loss_line = (run / "config.toml").read_text().splitlines()[0]
    assert loss_line.startswith("# distilled student's loss = 0.5 · CE(labels) + 0.5 · T²·KL"), loss_line
    assert not (run / "checkpoints").exists(), "checkpoints go once the models are saved"
    assert_students_share_one_vocabulary(run)
    assert not [p for p in run.rglob(".*")], "no temporary files left behind"
    assert (run.parent / "latest").resolve() == run
    report = (run.parent.parent / "reports" / "training.md").read_text()
    assert "student-baseline" in report and "entity F1" in report


def test_student_runs_in_a_transformers_pipeline(quickstart_run: Path) -> None:
    from transformers import pipeline

    tagger = pipeline("token-classification", model=str(quickstart_run / "student"))
    out = tagger("Date: 12/03/1998 Name: John Smith")
    assert out and all(item["entity"] in LABELS for item in out)


def test_prediction_api_labels_every_word_for_teacher_and_student(quickstart_run: Path) -> None:
    from PIL import Image

    words = ["PURCHASE", "ORDER", "Date:", "12/03/1998", "Name:", "John", "Smith"]
    boxes = [[50 + 100 * i, 40, 140 + 100 * i, 60] for i in range(len(words))]
    image = Image.new("RGB", (600, 800), "white")
    for model in ("teacher", "student"):
        preds = Predictor.from_dir(quickstart_run / model, max_length=128, stride=32).predict(
            words, boxes, image
        )
        assert [p.word for p in preds] == words
        assert all(p.label in LABELS and 0.0 < p.score <= 1.0 for p in preds)


def test_help_documents_every_option(tmp_path: Path) -> None:
    out = run_cli(["-m", "distill.train", "--help"], cwd=tmp_path).stdout
    for f in fields(TrainConfig):
        assert "--" + f.name.replace("_", "-") in out
    assert "--preset" in out and "--config" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--config", "missing.toml"], "missing.toml: no such config file"),
        (["--stride", "600"], "--stride (600) must be smaller than --max-length (512)"),
        (["--stride", "-1"], "--stride cannot be negative"),
        (
            ["--stage", "student", "--preset", "quickstart", "--output-dir", "fresh"],
            "needs a fine-tuned teacher",
        ),
        (["--data", "./no/such/dir"], "no/such/dir"),
    ],
)
def test_bad_input_is_a_clear_error(tmp_path: Path, args: list[str], message: str) -> None:
    proc = run_cli(["-m", "distill.train", *args], cwd=tmp_path, check=False)
    assert proc.returncode == 2
    assert message in proc.stderr and "Traceback" not in proc.stderr


def test_config_file_is_read_and_checked(tmp_path: Path) -> None:
    (tmp_path / "bad.toml").write_text("epochs = 3\nnot_an_option = 1\n")
    proc = run_cli(["-m", "distill.train", "--config", "bad.toml"], cwd=tmp_path, check=False)
    assert proc.returncode == 2 and "bad.toml: unknown option 'not_an_option'" in proc.stderr


def model_weights(run: Path) -> dict[str, dict[str, np.ndarray]]:
    return {
        name: {k: v.numpy() for k, v in load_file(run / name / "model.safetensors").items()}
        for name in ("teacher", "student", "student-baseline")
    }


# Resuming restores the model, optimizer, scheduler and RNG states, so on CPU the resumed run ends
# where the uninterrupted one does; the tolerance (met on 2 CPU cores) only allows for sums that
# a BLAS may order differently between processes. On a busy CPU the attention key biases, which get
# no gradient (softmax ignores a constant added to every key) and hold only rounding noise near
# 1e-7, came 1.1e-6 apart; a resume that lost any state moves weights by orders of magnitude more.
RESUME_ATOL = 1e-5


def test_killed_run_resumes_from_its_checkpoint_and_ends_with_the_same_weights(tmp_path: Path) -> None:
    args = [*SMALL, "--teacher-epochs", "12", "--save-steps", "4"]
    run_cli(["-m", "distill.train", *args, "--output-dir", "whole"], cwd=tmp_path)
    # The tiny WordPiece trainer is not deterministic (see trained_once): give the second run the
    # first one's tokenizers, so the weights compared differ only by the interruption.
    shutil.copytree(tmp_path / "whole" / "tokenizers", tmp_path / "killed" / "tokenizers")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "distill.train", *args, "--output-dir", "killed"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoints = tmp_path / "killed" / "checkpoints" / "teacher"
    deadline = time.time() + 300
    while not list(checkpoints.glob("checkpoint-*/trainer_state.json")):
        assert proc.poll() is None, "the run ended before its first checkpoint"
        assert time.time() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "killed" / "teacher").exists(), "killed before the teacher was saved"
    resumed = run_cli(["-m", "distill.train", *args, "--output-dir", "killed"], cwd=tmp_path)
    assert "teacher: resuming from killed/checkpoints/teacher/checkpoint-" in resumed.stderr, (
        "said on the console"
    )
    assert run_files(tmp_path / "killed") == run_files(tmp_path / "whole")
    metrics = json.loads((tmp_path / "killed" / "metrics.json").read_text())
    assert metrics["models"]["teacher"]["resumed_from"].startswith("checkpoint-")
    whole, resumed = model_weights(tmp_path / "whole"), model_weights(tmp_path / "killed")
    for name, tensors in whole.items():
        assert tensors.keys() == resumed[name].keys()
        for key, value in tensors.items():
            np.testing.assert_allclose(
                resumed[name][key], value, rtol=0, atol=RESUME_ATOL, err_msg=f"{name} {key}"
            )


@pytest.mark.skipif(shutil.which("torchrun") is None, reason="torchrun is not on PATH")
def test_torchrun_two_processes_on_cpu(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    cmd = ["torchrun", "--nproc_per_node", "2", "-m", "distill.train", *SMALL, "--output-dir", "ddp"]
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads((tmp_path / "ddp" / "metrics.json").read_text())
    assert set(metrics["models"]) == {"teacher", "student", "student-baseline"}
    assert_students_share_one_vocabulary(tmp_path / "ddp")
    for name, record in metrics["models"].items():
        assert record["world_size"] == 2, f"{name} trained with DDP across both processes"


def test_an_ensemble_of_teachers_with_different_tokenisers_distils_one_student(
    quickstart_run: Path, tmp_path: Path
) -> None:
    from distill.config import TrainConfig
    from distill.data import load_source
    from distill.models import load_bundle
    from distill.training.stages.common import ensemble_word_logits

    members = [str(quickstart_run / "teacher"), str(quickstart_run / "student")]  # BPE and WordPiece
    args = [*SMALL, "--stage", "student", "--teacher-dir", ",".join(members), "--no-baseline"]
    run_cli(["-m", "distill.train", *args, "--output-dir", "ens"], cwd=tmp_path)
    metrics = json.loads((tmp_path / "ens" / "metrics.json").read_text())
    teacher = metrics["models"]["teacher"]
    assert teacher["model_type"] == "ensemble" and teacher["members"] == members
    assert 0.0 <= teacher["f1"] <= 1.0 and metrics["models"]["student"]["distilled"] is True
    assert not (tmp_path / "ens" / "teacher").exists(), "members stay where they are"

    # The average against each member run directly (its own tokenizer or processor, one forward
    # pass, first sub-token of each word): not through the window encoder or word merge under test.
    config = TrainConfig(max_length=128, stride=32)
    forms = load_source("synthetic", synthetic_forms=6, max_words=40)["test"]
    mean = ensemble_word_logits([load_bundle(m) for m in members], forms, config, "test")
    for i, form in enumerate(forms):
        each = [direct_word_logits(Path(m), form) for m in members]
        assert mean[i].shape == each[0].shape == (len(form["tokens"]), len(LABELS))
        np.testing.assert_allclose(mean[i], (each[0] + each[1]) / 2, rtol=0, atol=1e-4)
    assert not np.allclose(each[0], each[1], atol=0.1), "the members disagree: the mean is a real average"


def direct_word_logits(model_dir: Path, form: dict) -> np.ndarray:
    """One model's logits at the first sub-token of each word, straight from transformers."""
    import torch
    from transformers import AutoModelForTokenClassification, AutoTokenizer, LayoutLMv3Processor

    model = AutoModelForTokenClassification.from_pretrained(model_dir).eval()
    words, boxes = form["tokens"], form["bboxes"]
    if model.config.model_type == "layoutlmv3":
        processor = LayoutLMv3Processor.from_pretrained(model_dir, apply_ocr=False)
        inputs = processor(form["image"].convert("RGB"), words, boxes=boxes, return_tensors="pt")
    else:
        inputs = AutoTokenizer.from_pretrained(model_dir)(
            words, is_split_into_words=True, return_tensors="pt"
        )
    assert inputs["input_ids"].shape[1] <= 128, "the form fits one window: no windowing to reproduce"
    with torch.no_grad():
        logits = model(**inputs).logits[0].numpy()
    first = {}
    for position, word in enumerate(inputs.word_ids()):
        if word is not None and word not in first:
            first[word] = position
    return logits[[first[w] for w in range(len(words))]]


def test_a_student_distilled_with_alpha_1_learns_what_its_teacher_says(
    quickstart_run: Path, tmp_path: Path
) -> None:
    """alpha 1 trains on the teacher's soft targets alone, so the teacher's signal must arrive: from a
    teacher whose outputs are permuted (it says tag y+1 where it means y), the student learns the
    permutation, not the labels. Zeroed or label-derived targets could not teach it that."""
    import torch

    from distill.data.run_data import load_run_data
    from distill.models import load_bundle
    from distill.run_dir import read_config

    teacher = load_bundle(quickstart_run / "teacher")
    n = teacher.model.config.num_labels
    shift = [(j - 1) % n for j in range(n)]  # output j reads the original output j-1
    with torch.no_grad():
        teacher.model.classifier.weight.copy_(teacher.model.classifier.weight[shift])
        teacher.model.classifier.bias.copy_(teacher.model.classifier.bias[shift])
    teacher.save(tmp_path / "permuted")
    args = [*SMALL, "--epochs", "6", "--stage", "student", "--teacher-dir", str(tmp_path / "permuted")]
    run_cli(
        ["-m", "distill.train", *args, "--alpha", "1", "--no-baseline", "--output-dir", "a1"], cwd=tmp_path
    )
    run = tmp_path / "a1"
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["distillation"]["alpha"] == 1.0 and metrics["models"]["student"]["distilled"] is True
    student = Predictor.from_dir(run / "student", max_length=128, stride=32)
    permuted = true = words = 0
    for form in load_run_data(read_config(run))["test"]:
        predicted = np.array([LABELS.index(p.label) for p in student.predict(form["tokens"], form["bboxes"])])
        gold = np.array(form["ner_tags"])
        permuted += int((predicted == (gold + 1) % n).sum())
        true += int((predicted == gold).sum())
        words += len(gold)
    # Measured: 64% of words get the permuted tag, 11% the true one (zeroed targets: 14% and 8%).
    assert permuted / words > 0.5 and permuted > 3 * true, (permuted / words, true / words)
