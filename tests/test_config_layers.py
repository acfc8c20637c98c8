"""Where each option comes from (defaults < preset < config file < flags), and which run it writes."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from distill.config import HUB_DATASET, PRESETS, TrainConfig
from distill.errors import DistillError
from distill.run_dir import CONFIG
from distill.train import main, parse_config


def config_file(tmp_path: Path, text: str) -> str:
    path = tmp_path / "partial.toml"
    path.write_text(text)
    return str(path)


def test_defaults_then_preset() -> None:
    assert parse_config([]) == TrainConfig()
    quick = parse_config(["--preset", "quickstart"])
    assert (quick.data, quick.teacher, quick.epochs) == ("synthetic", "tiny", PRESETS["quickstart"]["epochs"])
    assert quick.alpha == TrainConfig().alpha, "what the preset leaves alone keeps its default"


def test_a_partial_config_file_keeps_the_preset_and_overrides_only_its_own_options(tmp_path: Path) -> None:
    config = parse_config(["--preset", "quickstart", "--config", config_file(tmp_path, "epochs = 3\n")])
    assert config.data == "synthetic" and config.data != HUB_DATASET, "the preset survives the file"
    assert (config.teacher, config.student, config.teacher_lr) == ("tiny", "tiny", 2e-3)
    assert config.epochs == 3, "the file overrides the preset"


def test_flags_override_the_config_file_and_the_preset(tmp_path: Path) -> None:
    path = config_file(tmp_path, "epochs = 3\nseed = 7\n")
    config = parse_config(
        ["--preset", "quickstart", "--config", path, "--epochs", "5", "--student-lr", "1e-4"]
    )
    assert (config.epochs, config.seed, config.student_lr, config.teacher_lr) == (5, 7, 1e-4, 2e-3)
    # The order on the command line does not matter: flags always win.
    again = parse_config(
        ["--epochs", "5", "--config", path, "--preset", "quickstart", "--student-lr", "1e-4"]
    )
    assert again == config


def test_a_runs_config_file_never_chooses_the_output_directory(tmp_path: Path) -> None:
    old = tmp_path / "runs" / "old"
    TrainConfig(data="synthetic", teacher="tiny", student="tiny", output_dir=str(old)).write(
        tmp_path / CONFIG
    )
    assert parse_config(["--config", str(tmp_path / CONFIG), "--seed", "2"]).output_dir == ""
    chosen = parse_config(["--config", str(tmp_path / CONFIG), "--output-dir", "runs/seed2"])
    assert chosen.output_dir == "runs/seed2"


def test_resuming_with_other_run_defining_options_is_refused_naming_them(tmp_path: Path) -> None:
    from distill.training.resolve import check_resumable

    run = tmp_path / "run"
    run.mkdir()
    first = parse_config(["--preset", "quickstart", "--output-dir", str(run)])
    first.write(run / CONFIG)
    check_resumable(run, first)  # the same options: resume
    # Where reports go, how evaluation is batched, which stage runs now: the same run.
    check_resumable(
        run,
        dataclasses.replace(first, **{"report_dir": "elsewhere", "eval_batch_size": 4, "stage": "student"}),
    )
    with pytest.raises(DistillError) as err:
        check_resumable(run, dataclasses.replace(first, **{"seed": 2, "alpha": 1.0}))
    assert "--seed 42 -> 2" in str(err.value) and "--alpha 0.5 -> 1.0" in str(err.value)
    assert "--output-dir" in str(err.value), "it says how to start a new run instead"


def test_reusing_a_runs_config_without_output_dir_neither_resumes_nor_rewrites_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The CLI: the old run's config.toml with --seed 2 must not write into the old run; with the
    old run named by --output-dir it is refused before any work, the old run untouched."""
    old = tmp_path / "runs" / "old"
    old.mkdir(parents=True)
    config = parse_config(["--preset", "quickstart", "--synthetic-forms", "8", "--output-dir", str(old)])
    config.write(old / CONFIG)
    before = (old / CONFIG).read_text()
    assert parse_config(["--config", str(old / CONFIG), "--seed", "2"]).output_dir == ""
    assert main(["--config", str(old / CONFIG), "--seed", "2", "--output-dir", str(old)]) == 2
    err = capsys.readouterr().err
    assert "output_dir ignored" in err and "--seed 42 -> 2" in err
    assert (old / CONFIG).read_text() == before and sorted(p.name for p in old.iterdir()) == [CONFIG]
