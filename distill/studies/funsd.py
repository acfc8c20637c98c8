"""`python -m distill.studies.funsd`: the FUNSD study behind reports/funsd.md, over several seeds.

Per seed, training runs (each a normal `python -m distill.train` run directory):
  <out>/seed<N>/teacher      the teacher, unless it is the default ensemble of the two plain students
  <out>/seed<N>/text         the text-only student, plain fine-tuning
  <out>/seed<N>/text-kd      the text-only student, vanilla distillation (soft targets: --alpha, --temperature)
  <out>/seed<N>/text-<kd>    the text-only student, the --best-kd method (e.g. feature distillation and a
                             transfer set), named after its options
  <out>/seed<N>/layout       the layout-aware student (word boxes, no image), plain fine-tuning
  <out>/seed<N>/layout-<kd>  the layout-aware student, the best method (vanilla without --best-kd)
  <out>/seed<N>/teacher<L>, teacher<L>-kd, teacher<L>-l2l
                             with --init-layers L: the student built from L of the teacher's layers
                             (--student teacher:L), plain, vanilla KD, and layer-to-layer KD (--l2l-kd)
Options after `--` go to every run (e.g. `-- --synthetic-forms 16`). Runs go `--jobs` at a time (the
CPU's cores split between them); finished runs are reused, so the command resumes where it stopped
and may be run in parts. The report gives mean ± std over seeds, differences paired by seed, the
int8 export of the students where `python -m export.onnx` has been run on their run directories
(`--export` runs it), the command that wrote it, the machine and the summed wall time of its runs.
`--speed-only` times every row's model (PyTorch fp32 and its recommended CPU variant) interleaved in
one session on the test split (speed.py) and the report adds forms/s, speed-ups over the
teacher, the F1-vs-forms/s frontier (funsd-frontier.png) and the targets that need them.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from distill import atomic
from distill.commands import portable_command
from distill.errors import DistillError
from distill.run_dir import read_json
from distill.studies.funsd_plan import (
    ENSEMBLE,
    LAYOUT_STUDENT,
    TEACHER_ROW,
    finished,
    run_all,
    run_dir,
    study_rows,
)
from distill.studies.funsd_tables import (
    collect,
    command_placeholders,
    render,
    shown_paths,
    tuning_table,
)
from distill.studies.funsd_targets import frontier_points, measure_speed
from distill.studies.plot import frontier_png
from distill.studies.speed import (
    SPEED_FILE,
)


def list_runs(args: argparse.Namespace, out: Path) -> list[str]:
    """`RUN MODEL` per finished run of the study: what `python -m export.onnx --models` exports."""
    lines = []
    for seed in args.seeds:
        for row in study_rows(args):
            if row is TEACHER_ROW and args.teacher == ENSEMBLE:
                continue
            if finished(out, seed, row, args):
                run, model = run_dir(out, seed, row, args)
                line = f"{run} {model}"
                if line not in lines:  # a shared teacher once
                    lines.append(line)
    return lines


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m distill.studies.funsd", description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default="../shared/data/funsd", help="FUNSD release directory")
    p.add_argument("--student", required=True, help="student checkpoint: hub id or local directory")
    p.add_argument(
        "--teacher",
        default=ENSEMBLE,
        help=f"'{ENSEMBLE}' (each seed's plain text-only and layout-aware students, averaged), "
        f"'{LAYOUT_STUDENT}' (the layout-aware student trained for --teacher-epochs), or a "
        "LayoutLMv3 hub id / directory, or a text encoder (see --teacher-as-is)",
    )
    p.add_argument(
        "--teacher-as-is",
        action="store_true",
        help="fine-tune a text encoder given as --teacher as itself, not as a LayoutLMv3 built around it",
    )
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument(
        "--teacher-seed",
        type=int,
        default=None,
        help="train one teacher, at this seed, and distil every seed's students from it "
        "(default: one teacher per seed); the report says so",
    )
    p.add_argument("--teacher-epochs", type=float, default=16.0)
    p.add_argument("--teacher-lr", type=float, default=2e-4)
    p.add_argument("--student-epochs", type=float, default=10.0)
    p.add_argument("--student-lr", type=float, default=2e-4)
    p.add_argument(
        "--box-lr", type=float, default=0.0, help="learning rate of new box embeddings (0: --student-lr)"
    )
    p.add_argument("--box-init", default="zero", help="new box embeddings start: zero, sinusoid or random")
    p.add_argument("--alpha", type=float, default=0.5, help="vanilla KD: weight of the soft targets")
    p.add_argument("--temperature", type=float, default=2.0, help="vanilla KD: temperature")
    p.add_argument(
        "--best-kd",
        default="",
        metavar="OPTIONS",
        help="distill.train options of the best method, added to vanilla KD's, e.g. "
        "'--feature-weight 1 --transfer-copies 2'; its rows are named after them (empty: vanilla only)",
    )
    p.add_argument(
        "--teacher-options",
        default="",
        metavar="OPTIONS",
        help="distill.train options for the teacher's run only, e.g. '--teacher-loss balanced "
        "--no-teacher-image --box-lr 1e-3'",
    )
    p.add_argument(
        "--init-layers",
        type=int,
        default=0,
        help="add the rows of a student built from this many of the teacher's layers (--student "
        "teacher:N): plain, vanilla KD and layer-to-layer KD (0: none)",
    )
    p.add_argument(
        "--l2l-kd",
        default="--hidden-weight 1",
        metavar="OPTIONS",
        help="the layer-to-layer row's distill.train options, added to vanilla KD's",
    )
    p.add_argument(
        "--speed-only",
        action="store_true",
        help="train nothing: time every row's model (PyTorch fp32 and its recommended CPU variant) "
        "interleaved, keep <output-dir>/speed.json, and write the report",
    )
    p.add_argument("--speed-rounds", type=int, default=3, help="interleaved timing rounds of --speed-only")
    p.add_argument(
        "--list-runs",
        action="store_true",
        help="print 'RUN MODEL' for every finished run (for a `python -m export.onnx` loop) and exit",
    )
    p.add_argument("--max-length", type=int, default=512)
    p.add_argument("--stride", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument(
        "--bf16", action=argparse.BooleanOptionalAction, default=False, help="bf16 mixed precision"
    )
    p.add_argument("--jobs", type=int, default=1, help="runs trained at once (cores are split between them)")
    p.add_argument(
        "--holdout-forms",
        type=int,
        default=0,
        help="tune on this many held-out training forms instead of the test split",
    )
    p.add_argument("--output-dir", default="runs/funsd")
    p.add_argument("--report-dir", default="reports")
    p.add_argument("--report-only", action="store_true", help="write the report from finished runs")
    p.add_argument(
        "--partial",
        action="store_true",
        help="report the runs finished so far (a study run in parts); rows say which seeds they cover",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    split = argv.index("--") if "--" in argv else len(argv)
    args = build_parser().parse_args(argv[:split])
    args.train_options = argv[split + 1 :]  # after `--`: passed to every distill.train run
    out = Path(args.output_dir)
    command = portable_command(
        ["python", "-m", "distill.studies.funsd", *argv], command_placeholders(args)[0]
    )
    try:
        if args.init_layers and args.teacher == ENSEMBLE:
            raise DistillError("--init-layers builds students from one trained teacher, not the ensemble")
        if args.list_runs:
            print("\n".join(list_runs(args, out)))
            return 0
        if not (args.report_only or args.speed_only):
            run_all(args, out)
        name = "funsd-holdout.md" if args.holdout_forms else "funsd.md"
        frontier_name = name.replace(".md", "-frontier.png")
        speed = measure_speed(args, out, command) if args.speed_only else None
        if speed is None and (out / SPEED_FILE).is_file():
            speed = read_json(out / SPEED_FILE)
        rows = collect(out, args)
        report = render(rows, args, command, speed, frontier_name)
        if args.holdout_forms:  # tuning: the study's report plus every run tried so far
            report += "\n## Every student run under " + f"`{out}`\n\n" + tuning_table(out, args.seeds)
        points = frontier_points(rows, speed)
        if points:
            title = f"FUNSD ({'held-out forms' if args.holdout_forms else 'test split'}), {speed['machine']}"
            atomic.write_bytes(Path(args.report_dir) / frontier_name, frontier_png(points, title))
        path = atomic.write_text(Path(args.report_dir) / name, report)
        atomic.write_json(Path(args.report_dir) / name.replace(".md", ".json"), shown_paths({
            "command": command, "rows": {row.kind: records for row, records in rows.items()}, "speed": speed,
        }, args))  # fmt: skip
    except DistillError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"report: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
