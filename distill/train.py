"""`python -m distill.train`: fine-tune the teacher, distil the student, score both, write the run directory.

Options come from, in increasing precedence: the defaults, `--preset`, `--config FILE.toml`, flags.
Run under `torchrun --nproc_per_node N -m distill.train ...` or `accelerate launch -m distill.train ...`
to train with DDP: the Hugging Face Trainer does the distributing.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from distill.config import PRESETS, TrainConfig
from distill.console import quiet_library_noise, training_summary
from distill.errors import DistillError
from distill.machine import is_main_process

if TYPE_CHECKING:
    from distill.training.resolve import Options


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m distill.train",
        description="Fine-tune a LayoutLMv3 teacher, distil it into a small student at the word level, "
        "score both on the test split and write a run directory (runs/<name>, runs/latest).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        default=argparse.SUPPRESS,
        help="a named set of options: quickstart = synthetic forms + tiny models (offline, ~1 min); "
        "tiny = tiny models on your --data; default = the hub models",
    )
    parser.add_argument(
        "--config",
        metavar="FILE",
        default=argparse.SUPPRESS,
        help="TOML file of options (e.g. a run's config.toml); flags override it",
    )
    defaults = TrainConfig()
    for field in dataclasses.fields(TrainConfig):
        flag = "--" + field.name.replace("_", "-")
        default = getattr(defaults, field.name)
        help_text = field.metadata.get("help", "")
        if isinstance(default, bool):
            parser.add_argument(
                flag,
                action=argparse.BooleanOptionalAction,
                default=argparse.SUPPRESS,
                help=f"{help_text} (default: {default})",
            )
        else:
            parser.add_argument(
                flag,
                type=type(default),
                default=argparse.SUPPRESS,
                metavar=field.name.upper(),
                help=f"{help_text} (default: {default!r})",
            )
    return parser


def parse_options(argv: Sequence[str] | None = None) -> Options:
    """The command line's options, layered (defaults < preset < config file < flags) by distill/training/resolve.py."""
    from distill.training.resolve import layered_options  # after --help: it loads the data and model layers

    given = vars(build_parser().parse_args(argv))
    return layered_options(given, preset=given.pop("preset", None), config_file=given.pop("config", None))


def parse_config(argv: Sequence[str] | None = None) -> TrainConfig:
    return parse_options(argv).config


def main(argv: Sequence[str] | None = None) -> int:
    quiet_library_noise()
    try:
        options = parse_options(argv)
        from distill.training.pipeline import run_training  # heavy imports after the arguments are known good

        run = run_training(options)
    except DistillError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: rerun the same command (with the same --output-dir) to resume", file=sys.stderr)
        return 130
    if is_main_process():  # one summary per launch, not one per DDP rank
        from distill.run_dir import METRICS, read_json
        from distill.training.report import TRAINING_REPORT

        report = Path(options.config.report_dir) / TRAINING_REPORT
        print("\n" + training_summary(read_json(run / METRICS), run, report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
