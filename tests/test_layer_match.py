"""Layer-to-layer distillation: the declared terms, their arithmetic, and their effect on a student."""

from __future__ import annotations

import json
import shutil
import tomllib
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import BertConfig, BertForTokenClassification

from distill.builders import tiny_student
from distill.config import TrainConfig
from distill.schema import FUNSD_LABELS
from distill.terms.declared import declared_terms, describe, intermediate_matches_record, mapped_terms
from distill.terms.layers import attention_term, hidden_term, intermediate_matches
from tests.conftest import run_cli
from tests.test_students import SMALL, WORDS


def test_six_of_twelve_layers_match_every_other_teacher_layer_and_the_embeddings() -> None:
    student = BertConfig(hidden_size=384, num_hidden_layers=6, num_attention_heads=12)
    teacher = BertConfig(hidden_size=768, num_hidden_layers=12, num_attention_heads=12)
    matches = intermediate_matches(student, teacher, hidden_weight=0.5, attention_weight=2.0)
    hidden = [(m.layer_S, m.layer_T) for m in matches if m.feature == "hidden"]
    assert hidden == [(0, 0), (1, 2), (2, 4), (3, 6), (4, 8), (5, 10), (6, 12)]
    assert all(m.proj == ["linear", 384, 768] and m.weight == 0.5 for m in matches if m.feature == "hidden")
    (attention,) = [m for m in matches if m.feature == "attention"]
    assert (attention.layer_S, attention.layer_T, attention.loss, attention.proj) == (
        5,
        11,
        "attention_kl",
        None,
    )
    assert intermediate_matches(student, teacher, 0.0, attention_weight=0.0) == []
    same = intermediate_matches(teacher, teacher, 1.0)
    assert all(m.proj is None for m in same) and [m.layer_T for m in same] == list(range(13))
    # As declared loss terms: one per matched pair, each recorded with TextBrewer's fields.
    declared = declared_terms(TrainConfig(alpha=0.5, hidden_weight=0.5, attention_weight=2.0))
    mapped = mapped_terms(declared, student, teacher)
    assert [t.name for t in mapped] == ["hard_labels", "soft_targets"] + ["hidden_states"] * 7 + [
        "attentions"
    ]
    assert intermediate_matches_record(mapped) == [m.record() for m in matches]
    assert "0→0, 1→2, 2→4, 3→6, 4→8, 5→10, 6→12" in describe(mapped) and "384→768" in describe(mapped)


def test_the_terms_vanish_on_equal_inputs_and_grow_with_a_difference() -> None:
    torch.manual_seed(0)
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]])
    h = torch.randn(2, 4, 8)
    assert hidden_term(h, h, mask, "hidden_mse") == 0
    other = h.clone()
    other[0, 3] += 100.0  # a padding position: not counted
    assert hidden_term(other, h, mask, "hidden_mse") == 0
    assert hidden_term(h + 0.1, h, mask, "hidden_mse") > 0
    attention = torch.softmax(torch.randn(2, 3, 4, 4), dim=-1)
    assert attention_term(attention, attention, mask).abs() < 1e-6
    assert attention_term(torch.softmax(torch.randn(2, 3, 4, 4), -1), attention, mask) > 0
    # A teacher with 2 image patches more: its text block, renormalised, is what the student matches.
    with_patches = torch.softmax(torch.randn(2, 3, 6, 6), dim=-1)
    text = with_patches[..., :4, :4] / with_patches[..., :4, :4].sum(-1, keepdim=True)
    assert attention_term(text, with_patches, mask).abs() < 1e-6


@pytest.fixture(scope="module")
def teacher_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("l2l")
    run_cli(["-m", "distill.train", *SMALL, "--stage", "teacher", "--output-dir", "t"], cwd=home)
    return home / "t" / "teacher"


def student_weights(home: Path, teacher: Path, name: str, *flags: str) -> dict[str, torch.Tensor]:
    args = [*SMALL, "--stage", "student", "--teacher-dir", str(teacher), "--student", "teacher:1",
            "--no-baseline", "--max-steps", "3", "--batch-size", "2", "--student-lr", "1e-2", *flags]  # fmt: skip
    run_cli(["-m", "distill.train", *args, "--output-dir", name], cwd=home)
    return load_file(home / name / "student" / "model.safetensors")


def test_layer_terms_are_off_at_weight_zero_and_change_the_student_otherwise(
    teacher_run: Path, tmp_path: Path
) -> None:
    plain = student_weights(tmp_path, teacher_run, "kd")
    zero = student_weights(tmp_path, teacher_run, "zero", "--hidden-weight", "0", "--attention-weight", "0")
    for key, value in plain.items():
        # Two processes: a BLAS may sum in another order between them (2 threads, a busy CPU), so not
        # bit for bit; a live term moves the weights by more than 1e-4 (below).
        torch.testing.assert_close(zero[key], value, rtol=0, atol=1e-6, msg=key)
    for flags in (["--hidden-weight", "1"], ["--attention-weight", "1"]):
        matched = student_weights(tmp_path, teacher_run, flags[0].strip("-"), *flags)
        moved = max(float((matched[k] - v).abs().max()) for k, v in plain.items())
        assert moved > 1e-4, f"{flags} changed nothing"
    run = tmp_path / "hidden-weight"
    config_text = (run / "config.toml").read_text()
    assert tomllib.loads(config_text)["hidden_weight"] == 1.0
    # config.toml records the mapped terms too, as comments: one TextBrewer-style table per pair.
    assert (
        '#   { layer_T = 1, layer_S = 1, feature = "hidden", loss = "hidden_mse", weight = 1.0 },'
        in config_text
    )
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["distillation"]["hidden_weight"] == 1.0
    matches = metrics["models"]["student"]["intermediate_matches"]
    # teacher:1 of 2 layers copied layer 0: its state 1 is matched to the state layer 0 produces (aligned).
    assert [(m["layer_S"], m["layer_T"]) for m in matches] == [(0, 0), (1, 1)]
    assert {m["loss"] for m in matches} == {"hidden_mse"} and all(m["proj"] is None for m in matches)
    terms = [t for t in metrics["distillation"]["terms"] if t["term"] == "hidden_states"]
    assert [(t["layer_S"], t["layer_T"], t["weight"]) for t in terms] == [(0, 0, 1.0), (1, 1, 1.0)]


def shared_tokenizer_models(tmp_path: Path) -> tuple[Path, Path]:
    """A BERT teacher of width 32 and a BERT student of width 16 with one tokenizer (built once:
    WordPiece training is not deterministic)."""
    tokenizer = tiny_student(WORDS, FUNSD_LABELS).tokenizer
    paths = []
    for hidden in (32, 16):
        config = BertConfig(vocab_size=len(tokenizer), hidden_size=hidden, num_hidden_layers=2,
                            num_attention_heads=2, intermediate_size=2 * hidden)  # fmt: skip
        path = tmp_path / f"bert{hidden}"
        BertForTokenClassification(config).save_pretrained(path)
        tokenizer.save_pretrained(path)
        paths.append(path)
    return paths[0], paths[1]


def test_a_narrower_student_sharing_the_tokenizer_matches_through_a_projection_dropped_before_saving(
    tmp_path: Path,
) -> None:
    teacher, student = shared_tokenizer_models(tmp_path)
    args = [*SMALL, "--teacher", str(teacher), "--teacher-as-is", "--student", str(student), "--hidden-weight",
            "1", "--max-steps", "2", "--no-baseline", "--output-dir", "run"]  # fmt: skip
    run_cli(["-m", "distill.train", *args], cwd=tmp_path)
    record = json.loads((tmp_path / "run" / "metrics.json").read_text())["models"]["student"]
    assert {tuple(m["proj"]) for m in record["intermediate_matches"]} == {("linear", 16, 32)}
    # Its config.toml, layer tables with their projections as comments, reads back as the run's options.
    assert TrainConfig.read(tmp_path / "run" / "config.toml").hidden_weight == 1.0
    saved = load_file(tmp_path / "run" / "student" / "model.safetensors")
    assert not any("distill_" in key for key in saved)
    assert json.loads((tmp_path / "run" / "student" / "config.json").read_text())["hidden_size"] == 16


def test_layer_matching_across_tokenisers_is_refused_in_one_line(tmp_path: Path) -> None:
    proc = run_cli(["-m", "distill.train", *SMALL, "--hidden-weight", "1"], cwd=tmp_path, check=False)
    assert proc.returncode == 2 and "shares the teacher's tokenizer" in proc.stderr, proc.stderr[-2000:]
    assert proc.stderr.count("\n") == 1 and not (tmp_path / "runs").exists(), "refused before any work"
    bert = shared_tokenizer_models(tmp_path)[0]
    other = tmp_path / "other"  # a WordPiece tokenizer trained again: another vocabulary
    shutil.copytree(bert, other)
    tiny_student(WORDS[::-1] + ["zzz", "qqq"], FUNSD_LABELS).tokenizer.save_pretrained(other)
    args = [
        *SMALL,
        "--teacher",
        str(bert),
        "--teacher-as-is",
        "--student",
        str(other),
        "--attention-weight",
        "1",
    ]
    proc = run_cli(["-m", "distill.train", *args], cwd=tmp_path, check=False)
    assert proc.returncode == 2 and "tokenise differently" in proc.stderr, proc.stderr[-2000:]
