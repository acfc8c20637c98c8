"""Issue 11's distillation methods on tiny models: a text teacher as-is, feature distillation, the
transfer set, the run's cache of teacher targets, and training time summed over resumed segments."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from distill.builders import build_student
from distill.config import PRESETS, TrainConfig
from distill.data.run_data import load_run_data
from distill.perturb import segments
from distill.schema import FUNSD_LABELS, LABELS
from distill.terms.declared import declared_terms
from distill.terms.soft_targets import distillation_loss
from distill.terms.word_vectors import PROJECTION, feature_loss
from distill.training.fit import ELAPSED, fit, last_complete_checkpoint
from distill.training.pipeline import run_training
from distill.training.stages.common import encode_split
from distill.training.teacher_targets import CACHE_DIR, cache_key, cached_targets
from distill.training.trainer import DistillationTrainer
from distill.training.transfer_set import TransferRecipe, transfer_set

SMALL = {**PRESETS["quickstart"], "synthetic_forms": 16, "max_words": 60, "report_dir": ""}


def small_config(tmp_path: Path, **changes: object) -> TrainConfig:
    values = {**SMALL, "report_dir": str(tmp_path / "reports"), **changes}
    return dataclasses.replace(TrainConfig(), **values)


@pytest.fixture(scope="module")
def text_teacher_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny DistilBERT fine-tuned as the teacher as it is (no LayoutLMv3 around it)."""
    tmp = tmp_path_factory.mktemp("asis")
    config = small_config(
        tmp, stage="teacher", teacher_as_is=True, teacher_epochs=3, output_dir=str(tmp / "run")
    )
    return run_training(config)


def test_a_text_encoder_trains_as_the_teacher_as_it_is(text_teacher_run: Path) -> None:
    teacher = json.loads((text_teacher_run / "teacher" / "config.json").read_text())
    assert teacher["model_type"] == "distilbert", "as-is: the encoder itself, not a LayoutLMv3 around it"
    record = json.loads((text_teacher_run / "metrics.json").read_text())["models"]["teacher"]
    assert record["architecture"] == "DistilBertForTokenClassification" and record["f1"] > 0.3
    assert not (text_teacher_run / "teacher" / "preprocessor_config.json").exists(), "no image processor"


def test_students_distil_from_a_text_teacher_and_reuse_its_cached_targets(
    text_teacher_run: Path, tmp_path: Path
) -> None:
    teacher = str(text_teacher_run / "teacher")
    run = tmp_path / "kd"
    config = small_config(tmp_path, stage="student", teacher_dir=teacher, epochs=1, output_dir=str(run))
    run_training(config)
    caches = list((run / CACHE_DIR).glob("*.npz"))
    assert len(caches) == 1
    first = json.loads((run / "metrics.json").read_text())
    assert first["models"]["student"]["distilled"] is True
    # A rerun finds every model finished and the targets cached: the file is read, not rewritten.
    stamp = caches[0].stat().st_mtime_ns
    run_training(config)
    assert caches[0].stat().st_mtime_ns == stamp


def test_cache_key_follows_the_teacher_and_the_forms(text_teacher_run: Path, tmp_path: Path) -> None:
    from distill.models import load_bundle

    config = small_config(tmp_path, output_dir=str(text_teacher_run))
    train = load_run_data(config)["train"]
    bundle = load_bundle(text_teacher_run / "teacher")
    run = tmp_path / "cache"
    a, cached = cached_targets(run, [bundle], train, config, with_vectors=False)
    assert not cached
    b, cached = cached_targets(run, [bundle], train, config, with_vectors=False)
    assert cached and all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    _, cached = cached_targets(run, [bundle], train.select(range(3)), config, with_vectors=False)
    assert not cached, "other forms: other targets"
    vectors, cached = cached_targets(run, [bundle], train, config, with_vectors=True)
    assert not cached and vectors[0].shape[1] == a[0].shape[1] + bundle.model.config.hidden_size
    np.testing.assert_allclose(vectors[0][:, : a[0].shape[1]], a[0], atol=1e-5)
    # Keyed by the weights, not the path: a copy elsewhere (or a DDP rank before rank 0 saved it) agrees.
    import shutil

    copy = shutil.copytree(text_teacher_run / "teacher", tmp_path / "copy")
    assert cache_key([load_bundle(copy)], train, 128, 32, False) == cache_key([bundle], train, 128, 32, False)
    with torch.no_grad():
        bundle.model.classifier.bias[0] += 1.0
    assert cache_key([load_bundle(copy)], train, 128, 32, False) != cache_key([bundle], train, 128, 32, False)


def test_cache_key_follows_the_boxes_and_the_page_images(tmp_path: Path) -> None:
    """A layout teacher's targets change with the boxes and the page: so must the key."""
    from PIL import Image

    config = small_config(tmp_path)
    train = load_run_data(config)["train"]
    bundle = build_student("tiny", ["a", "b"], FUNSD_LABELS)
    key = cache_key([bundle], train, 128, 32, False)
    assert cache_key([bundle], train, 128, 32, False) == key, "the same forms: the same key"
    shifted = train.map(lambda form: {"bboxes": [[min(1000, v + 300) for v in b] for b in form["bboxes"]]})
    assert shifted["tokens"] == train["tokens"] and shifted["bboxes"] != train["bboxes"]
    assert cache_key([bundle], shifted, 128, 32, False) != key, "boxes moved: other targets"
    blank = Image.new("RGB", (100, 100), "white")
    repainted = train.map(lambda form, i: {"image": blank if i == 0 else form["image"]}, with_indices=True)
    assert repainted["bboxes"] == train["bboxes"]
    assert cache_key([bundle], repainted, 128, 32, False) != key, "another page image: other targets"


def tiny_batch(num_labels: int = 7, hidden: int = 16) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    labels = torch.randint(0, num_labels, (2, 6), generator=generator)
    labels[:, 0] = -100
    targets = torch.randn(2, 6, num_labels + hidden, generator=generator)
    return {"labels": labels, "teacher_logits": targets}


def test_feature_term_is_off_at_weight_zero_and_reaches_the_projection_otherwise(tmp_path: Path) -> None:
    bundle = build_student("tiny", ["alpha", "beta", "gamma", "delta"] * 20, FUNSD_LABELS)
    model = bundle.model
    hidden_teacher = 16
    projection = torch.nn.Linear(model.config.hidden_size, hidden_teacher)
    model.add_module(PROJECTION, projection)
    batch = tiny_batch(model.config.num_labels, hidden_teacher)
    ids = torch.randint(5, 20, (2, 6), generator=torch.Generator().manual_seed(1))
    inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    args_dir = str(tmp_path / "t")

    def loss_with(weight: float) -> torch.Tensor:
        from transformers import TrainingArguments

        trainer = DistillationTrainer(
            model=model,
            args=TrainingArguments(output_dir=args_dir, use_cpu=True, report_to=[]),
            terms=declared_terms(TrainConfig(feature_weight=weight)),
        )
        return trainer.compute_loss(model, {**inputs, **{k: v.clone() for k, v in batch.items()}})

    model.eval()  # no dropout: the two losses differ only by the feature term
    plain = loss_with(0.0)
    logits = model(**inputs).logits
    expected = distillation_loss(logits, batch["teacher_logits"][..., :7], batch["labels"])
    torch.testing.assert_close(plain, expected)
    projection.zero_grad()
    with_features = loss_with(1.0)
    hidden = model(**inputs, output_hidden_states=True).hidden_states[-1]
    term = feature_loss(projection(hidden), batch["teacher_logits"][..., 7:], batch["labels"])
    torch.testing.assert_close(with_features, expected + term)
    with_features.backward()
    assert projection.weight.grad is not None and projection.weight.grad.abs().sum() > 0


def test_feature_distillation_changes_the_student_and_is_not_saved_with_it(
    text_teacher_run: Path, tmp_path: Path
) -> None:
    run = tmp_path / "feat"
    config = small_config(
        tmp_path,
        stage="student",
        teacher_dir=str(text_teacher_run / "teacher"),
        alpha=0.0,  # no soft targets: only the feature term separates the student from its baseline
        feature_weight=1.0,
        max_steps=6,
        output_dir=str(run),
    )
    run_training(config)
    student = load_file(run / "student" / "model.safetensors")
    baseline = load_file(run / "student-baseline" / "model.safetensors")
    assert not any(PROJECTION in key for key in student), "the projection is training scaffolding"
    assert student.keys() == baseline.keys()
    assert any(not torch.equal(student[k], baseline[k]) for k in student)
    metrics = json.loads((run / "metrics.json").read_text())
    assert (
        metrics["models"]["student"]["distilled"] and not metrics["models"]["student-baseline"]["distilled"]
    )
    # Issue 20, defect 5: training.md called this "plain fine-tuning" and dropped the comparison.
    report = (tmp_path / "reports" / "training.md").read_text()
    assert "plain fine-tuning" not in report
    assert "Same budget, same initialisation: distilled F1" in report
    assert "1 · cosine distance of the projected student word vectors to the teacher's" in report
    assert [t["term"] for t in metrics["distillation"]["terms"]] == ["hard_labels", "word_vectors"]


def test_feature_weight_zero_and_alpha_zero_is_plain_fine_tuning(
    text_teacher_run: Path, tmp_path: Path
) -> None:
    """No term reads the teacher: no teacher is needed, loaded, scored or run, and the student is
    exactly the baseline a distilled run trains beside its student (same seed, data, steps)."""
    distilled = small_config(
        tmp_path, stage="student", teacher_dir=str(text_teacher_run / "teacher"), max_steps=4,
        output_dir=str(tmp_path / "kd"),
    )  # fmt: skip
    run_training(distilled)
    # The tiny WordPiece trainer is not deterministic: the plain run gets the same tokenizers.
    import shutil

    shutil.copytree(tmp_path / "kd" / "tokenizers", tmp_path / "plain" / "tokenizers")
    plain = dataclasses.replace(
        distilled,
        **{"teacher_dir": "", "alpha": 0.0, "feature_weight": 0.0, "output_dir": str(tmp_path / "plain")},
    )
    run_training(plain)
    metrics = json.loads((tmp_path / "plain" / "metrics.json").read_text())
    assert set(metrics["models"]) == {"student"}, "no teacher, and no baseline: the student is one"
    assert metrics["models"]["student"]["distilled"] is False and not metrics["distillation"]["distilled"]
    assert metrics["distillation"]["terms"] == [{"term": "hard_labels", "weight": 1.0}]
    assert not (tmp_path / "plain" / CACHE_DIR).exists(), "the teacher never ran"
    student = load_file(tmp_path / "plain" / "student" / "model.safetensors")
    baseline = load_file(tmp_path / "kd" / "student-baseline" / "model.safetensors")
    kd = load_file(tmp_path / "kd" / "student" / "model.safetensors")
    assert student.keys() == baseline.keys()
    for key, value in baseline.items():
        torch.testing.assert_close(student[key], value, rtol=0, atol=1e-6, msg=key)
    assert any(not torch.equal(kd[k], baseline[k]) for k in kd), "distillation itself changes the student"
    assert "plain fine-tuning" in (tmp_path / "reports" / "training.md").read_text()


def test_a_collapsed_teacher_is_refused_unless_asked_for(text_teacher_run: Path, tmp_path: Path) -> None:
    """Issue 20, defect 15: a teacher answering one label everywhere was distilled from without a word."""
    from distill.errors import DistillError
    from distill.models import load_bundle

    collapsed = load_bundle(text_teacher_run / "teacher")
    with torch.no_grad():  # every word gets I-ANSWER, whatever it is
        collapsed.model.classifier.weight.zero_()
        collapsed.model.classifier.bias.copy_(torch.nn.functional.one_hot(torch.tensor(6), 7) * 10.0)
    collapsed.save(tmp_path / "collapsed")
    config = small_config(
        tmp_path, stage="student", teacher_dir=str(tmp_path / "collapsed"), max_steps=2,
        output_dir=str(tmp_path / "run"),
    )  # fmt: skip
    with pytest.raises(
        DistillError, match=r"predicts I-ANSWER for 100\.0% of the training words .* collapsed"
    ):
        run_training(config)
    assert not (tmp_path / "run" / "student").exists(), "no student learnt the collapse"
    assert (
        "**The teacher has collapsed**: it predicts I-ANSWER for 100.0%"
        in (tmp_path / "reports" / "training.md").read_text()
    )
    run_training(dataclasses.replace(config, distil_collapsed_teacher=True))  # the same run, now asked for
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert (
        metrics["teacher_collapse"]["label"] == "I-ANSWER" and metrics["teacher_collapse"]["distilled_anyway"]
    )
    assert metrics["models"]["student"]["distilled"] is True


def test_segments_keep_entities_whole() -> None:
    # O O(same box) B-Q I-Q B-A O(new box)
    tags = [0, 0, 3, 4, 5, 0]
    boxes = [[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 3, 3], [2, 2, 3, 3], [4, 4, 5, 5], [6, 6, 7, 7]]
    assert segments(tags, boxes, LABELS) == [(0, 2), (2, 4), (4, 5), (5, 6)]


def test_transfer_set_is_built_from_training_forms_only(tmp_path: Path) -> None:
    config = small_config(tmp_path, holdout_forms=3)
    data = load_run_data(config)
    train, held_out = data["train"], data["test"]
    # The old recipe (random training words, tags kept): every word of a copy is a training word.
    copies = transfer_set(train, TransferRecipe(2, 0.15, "random", True, "grow"), seed=0).forms
    assert len(copies) == 2 * len(train)
    train_ids = set(train["id"])
    assert {i.split("#aug")[0] for i in copies["id"]} == train_ids
    vocabulary = {w for form in train["tokens"] for w in form}
    for form, source in zip(copies, list(train) * 2, strict=True):
        assert set(form["tokens"]) <= vocabulary, "only training words"
        assert len(form["tokens"]) == len(source["tokens"]) == len(form["bboxes"]) == len(form["ner_tags"])
        assert sorted(form["ner_tags"]) == sorted(source["ner_tags"]), "tags travel with their words"
        assert all(0 <= v <= 1000 for box in form["bboxes"] for v in box)
    held = {tuple(f) for f in held_out["tokens"]}
    assert not held & {tuple(f) for f in copies["tokens"]}, "no held-out form enters the transfer set"
    assert any(a["tokens"] != b["tokens"] for a, b in zip(copies, train, strict=False)), "it perturbs"


@pytest.mark.parametrize("steps", ["grow", "same"])
def test_the_step_count_grows_with_the_transfer_set_unless_asked_to_stay(
    text_teacher_run: Path, tmp_path: Path, steps: str
) -> None:
    """Issue 28: a copy adds to the training (grow, the default) instead of displacing a real form."""
    run = tmp_path / "transfer"
    config = small_config(
        tmp_path,
        stage="student",
        teacher_dir=str(text_teacher_run / "teacher"),
        transfer_copies=2,
        transfer_steps=steps,
        epochs=2,
        output_dir=str(run),
    )
    run_training(config)
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["transfer_set"]["forms"] == 2 * metrics["train_forms"]
    assert metrics["transfer_set"]["steps"] == steps and metrics["transfer_set"]["candidates"] == "neighbours"
    steps_taken = {name: metrics["models"][name]["train_steps"] for name in ("student", "student-baseline")}
    if steps == "same":
        assert abs(steps_taken["student"] - steps_taken["student-baseline"]) <= 1, steps_taken
    else:  # 1 + N times the windows, within a batch's rounding per epoch
        ratio = steps_taken["student"] / steps_taken["student-baseline"]
        assert 2.5 <= ratio <= 3.5, steps_taken


def test_no_held_out_form_reaches_the_students_windows(text_teacher_run: Path, tmp_path: Path) -> None:
    """The windows themselves: no window of a held-out form is inside any training window."""
    from distill.models import load_bundle
    from distill.training.resolve import resolve_run
    from distill.training.stages.common import RunMetrics
    from distill.training.stages.students import encode_students, with_transfer_set

    teacher = str(text_teacher_run / "teacher")
    config = small_config(tmp_path, stage="student", teacher_dir=teacher, holdout_forms=3, transfer_copies=3,
                          transfer_replace=0.2, output_dir=str(tmp_path / "run"))  # fmt: skip
    run = resolve_run(config)
    bundle = load_bundle(teacher)
    transfer = with_transfer_set(run, [bundle], RunMetrics(run))
    windows = encode_students(run, bundle, None, transfer, None)[True]
    assert len(windows) > len(run.train)
    trained = [f" {' '.join(map(str, w['input_ids'][1:-1]))} " for w in windows]
    held = encode_split(bundle.encoder(config.max_length, config.stride), run.test)
    assert held
    for window in held:
        body = f" {' '.join(map(str, window['input_ids'][1:-1]))} "
        assert not any(body in text for text in trained), "a held-out form's window is in the training"
    # The check can fail: a training form's own window is found among them.
    own = encode_split(bundle.encoder(config.max_length, config.stride), run.train.select([0]))[0]
    assert any(f" {' '.join(map(str, own['input_ids'][1:-1]))} " in text for text in trained)


def test_train_seconds_add_up_over_resumed_segments(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = small_config(tmp_path, max_steps=2, save_steps=1, output_dir=str(tmp_path / "run"))
    data = load_run_data(config)
    words = [w for form in data["train"]["tokens"] for w in form]
    bundle = build_student("tiny", words, FUNSD_LABELS)
    windows = encode_split(bundle.encoder(config.max_length, config.stride), data["train"])
    run = tmp_path / "run"
    fit(bundle, windows, config, run, "student", 1e-3, 1.0)
    checkpoint = last_complete_checkpoint(run / "checkpoints" / "student")
    assert checkpoint is not None and (checkpoint / ELAPSED).is_file()
    # Pretend the first segment took 1000 s: the resumed segment must add to it, not replace it.
    (checkpoint / ELAPSED).write_text(json.dumps({"train_seconds": 1000.0}))
    capsys.readouterr()
    result = fit(bundle, windows, dataclasses.replace(config, **{"max_steps": 4}), run, "student", 1e-3, 1.0)
    assert result.resumed_from and result.steps == 4
    # Issue 20, defect 16: the console said nothing; only metrics.json recorded resumed_from.
    assert f"student: resuming from {checkpoint} (step 2)" in capsys.readouterr().err
    assert 1000.0 < result.train_seconds < 1000.0 + 600
