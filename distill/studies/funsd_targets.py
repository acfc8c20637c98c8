"""The FUNSD study's costs and targets: forms/s per runtime, speed-ups, the frontier, the issue's targets."""

from __future__ import annotations

import argparse
import math
import os
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from distill import atomic
from distill.errors import DistillError
from distill.machine import machine_summary
from distill.predict.loading import recommended_cpu_variant
from distill.studies.funsd_plan import ENSEMBLE, TEACHER_ROW, TEXT, Row, run_dir, study_rows
from distill.studies.plot import Point
from distill.studies.speed import PYTORCH, RECOMMENDED, SPEED_FILE, Target, time_all


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def fmt(values: Sequence[float], scale: float = 100.0, digits: int = 1, signed: bool = False) -> str:
    m, s = mean_std([v * scale for v in values])
    mean = f"{m:+.{digits}f}" if signed else f"{m:.{digits}f}"
    # One value (a shared teacher, a row with one seed so far) has no spread to show.
    return mean if len(values) == 1 else f"{mean} ± {s:.{digits}f}"


RUNTIMES = ((PYTORCH, "PyTorch fp32"), (RECOMMENDED, "recommended CPU variant"))


SMALL_PARAMS = 25e6  # the "smallest student" class of the targets (MiniLM-L6: 22.7 M)


def f1_points(records: list[dict[str, Any]]) -> list[float]:
    return [r["f1"] * 100.0 for r in records]


def speed_of(speed: dict[str, Any] | None, row: Row, runtime: str) -> float | None:
    entry = ((speed or {}).get("rows", {}).get(row.kind) or {}).get(runtime)
    return entry["forms_per_s"] if entry else None


def speedup(speed: dict[str, Any] | None, row: Row, runtime: str) -> float | None:
    ours, teacher = speed_of(speed, row, runtime), speed_of(speed, TEACHER_ROW, runtime)
    return ours / teacher if ours and teacher else None


def frontier_points(rows: dict[Row, list[dict[str, Any]]], speed: dict[str, Any] | None) -> list[Point]:
    points = []
    for row, records in rows.items():
        for runtime, name in RUNTIMES:
            forms = speed_of(speed, row, runtime)
            if records and forms:
                m, sd = mean_std(f1_points(records))
                points.append(Point(row.kind, name, forms, m, sd))  # run names: short labels
    return points


def cost_section(
    rows: dict[Row, list[dict[str, Any]]],
    args: argparse.Namespace,
    speed: dict[str, Any] | None,
    frontier_name: str,
) -> list[str]:
    """forms/s beside F1, the speed-ups over the teacher, the frontier plot and the targets that need them."""
    lines = ["", "## Cost: forms/s on the scored split, and the targets of the teacher-initialised study", ""]
    if speed:
        lines += [
            f"Timed by `{speed['command']}` (no training running) on {speed['machine']}: "
            f"{speed['rounds']} interleaved rounds over the {speed['forms']} forms, {speed['batch_size']} "
            f"windows a batch, {speed['threads']} threads; median per model. One seed's models "
            f"(seed {speed['seed']}): speed does not depend on the seed. forms/s is end to end (windows, "
            "tokens, image where read, forward passes); × teacher is the speed-up over the teacher in the "
            "same runtime (the teacher's own recommended variant for that column).",
            "",
        ]
    else:
        lines += ["Not timed yet: run the study command again with `--speed-only` (no training running).", ""]
    lines += [
        "| model | params | entity F1 | PyTorch fp32 forms/s | × teacher | recommended CPU variant | forms/s | × teacher | its F1 | ΔF1 vs PyTorch |",
        "|---|---:|---:|---:|---:|---|---:|---:|---:|---:|",
    ]
    for row, records in rows.items():
        if not records:
            lines.append(f"| {row.label} | not run yet |" + " |" * 8)
            continue
        cells = []
        for runtime, _ in RUNTIMES:
            forms, up = speed_of(speed, row, runtime), speedup(speed, row, runtime)
            cells.append(f"{forms:.2f}" if forms else "not timed")
            cells.append(f"{up:.2f}×" if up else "—")
        recommended = [r["recommended"] for r in records if r.get("recommended")]
        variant = recommended[0]["variant"] if recommended else "not exported"
        scored = [v for v in recommended if v.get("f1") is not None]
        rec_f1 = fmt([v["f1"] for v in scored]) if scored else "—"
        rec_delta = fmt([v["delta_f1_points"] for v in scored], 1.0, 2, signed=True) if scored else "—"
        lines.append(
            f"| {row.label} | {records[0]['params'] / 1e6:.1f} M | {fmt([r['f1'] for r in records])} | "
            f"{cells[0]} | {cells[1]} | {variant} | {cells[2]} | {cells[3]} | {rec_f1} | {rec_delta} |"
        )
    if speed and frontier_points(rows, speed):
        names = ", ".join(f"{row.kind} = {row.label}" for row in rows)
        lines += [
            "",
            f"![entity F1 against forms/s, both runtimes]({frontier_name})",
            "",
            f"Points: {names}.",
        ]
    lines += ["", "Against the targets of the teacher-initialised study (means over seeds):", ""]
    lines += issue_targets(rows, speed)
    return lines


def issue_targets(rows: dict[Row, list[dict[str, Any]]], speed: dict[str, Any] | None) -> list[str]:
    teacher = rows[TEACHER_ROW]
    t_f1 = statistics.fmean(f1_points(teacher)) if teacher else float("nan")
    header = [r["per_type"]["HEADER"]["f1"] * 100 for r in teacher if "HEADER" in r.get("per_type", {})]
    t_header = statistics.fmean(header) if header else float("nan")
    out = [
        verdict(
            f"the teacher reaches ≥ 63.0 F1 ({t_f1:.2f}) with HEADER F1 ≥ 30 ({t_header:.2f})",
            known(t_f1 + t_header, t_f1 >= 63.0 and t_header >= 30.0),
        )
    ]
    students = {row: recs for row, recs in rows.items() if row is not TEACHER_ROW and recs}

    def within(row: Row, points: float, times: float, what: str) -> list[str]:
        gap = t_f1 - statistics.fmean(f1_points(students[row]))
        lines = []
        for runtime, name in RUNTIMES:
            up = speedup(speed, row, runtime)
            lines.append(
                verdict(
                    f"{what} ({row.label}) is within {points:.1f} F1 of the teacher "
                    f"({abs(gap):.2f} {'below' if gap >= 0 else 'above'}) at "
                    f"≥ {times:g}× its forms/s in {name} " + (f"({up:.2f}×)" if up else "(not timed yet)"),
                    known(gap if up else float("nan"), gap <= points and up is not None and up >= times),
                )
            )
        return lines

    if students:
        out += within(best_student(students), 2.0, 2.0, "the best student")
        small = {row: recs for row, recs in students.items() if recs[0]["params"] <= SMALL_PARAMS}
        if small:
            best_small = max(small, key=lambda row: statistics.fmean(f1_points(small[row])))
            out += within(
                best_small, 4.0, 6.0, f"the best student of ≤ {SMALL_PARAMS / 1e6:.0f} M parameters"
            )
        else:
            out.append(verdict(f"a student of ≤ {SMALL_PARAMS / 1e6:.0f} M parameters exists", False))
    distilled = {row: recs for row, recs in rows.items() if row.distilled}  # finished or not
    losses = {
        row: [
            r["recommended"]["delta_f1_points"]
            for r in recs
            if (r.get("recommended") or {}).get("f1") is not None
        ]
        for row, recs in distilled.items()
    }
    measured = {row: statistics.fmean(v) for row, v in losses.items() if v}
    worst = min(measured.items(), key=lambda kv: kv[1], default=None)
    out.append(
        verdict(
            "the recommended CPU variant of every distilled student loses ≤ 1.0 F1 point"
            + (f" (worst: {worst[0].label}, {worst[1]:+.2f})" if worst else ""),
            # One loss beyond the budget decides; otherwise every distilled row must have been measured.
            False
            if any(v < -1.0 for v in measured.values())
            else None
            if len(measured) < len(distilled) or not distilled
            else True,
            ""
            if len(measured) == len(distilled)
            else f" ({len(measured)} of {len(distilled)} rows exported)",
        )
    )
    return out


def best_student(rows: dict[Row, list[dict[str, Any]]]) -> Row:
    """The student row with the best mean F1 over the seeds every finished student row shares.

    A row with one seed so far is not ranked against another's three: a partial study would pick on
    luck. Without a shared seed each row's own mean decides; with nothing finished, the text row.
    """
    students = [row for row in rows if row is not TEACHER_ROW and rows[row]]
    common = set.intersection(*({r["seed"] for r in rows[row]} for row in students)) if students else set()
    return max(
        students,
        key=lambda row: statistics.fmean(r["f1"] for r in rows[row] if r["seed"] in common or not common),
        default=TEXT,
    )


def known(value: float, held: bool) -> bool | None:
    """A verdict's outcome, or None while the figure behind it is not measured (NaN)."""
    return None if math.isnan(value) else held


def verdict(claim: str, held: bool | None, note: str = "") -> str:
    outcome = "not measured yet" if held is None else "met" if held else "**not met**"
    return f"- {outcome}: {claim}{note}"


def speed_targets(args: argparse.Namespace, out: Path, seed: int) -> list[Target]:
    """Every row's model of one seed, in PyTorch and (where exported) its recommended CPU variant."""
    targets = []
    for row in study_rows(args):
        if row is TEACHER_ROW and args.teacher == ENSEMBLE:
            continue  # two models, not one to time: its members are the plain rows
        run, model = run_dir(out, seed, row, args)
        if not (run / model / "config.json").is_file():
            continue
        targets.append(Target(row.kind, PYTORCH, run / model, "PyTorch fp32"))
        recommended = recommended_cpu_variant(run, model)
        if recommended is not None:
            targets.append(Target(row.kind, RECOMMENDED, *recommended))
    return targets


def measure_speed(args: argparse.Namespace, out: Path, command: str) -> dict[str, Any]:
    """Time every row (funsd_speed.time_all) and keep the figures in <out>/speed.json."""
    import torch

    from distill.data.run_data import load_run_data
    from distill.run_dir import read_config

    seed = args.seeds[0]
    targets = speed_targets(args, out, seed)
    if not targets:
        raise DistillError("no finished run to time: train the study first", out / f"seed{seed}")
    config = read_config(targets[0].path.parent)  # a row's run: the first target is its PyTorch model
    columns = ("tokens", "bboxes", "image")
    forms = [{k: row[k] for k in columns} for row in load_run_data(config)["test"]]
    threads = os.cpu_count() or 1
    torch.set_num_threads(threads)
    figures = time_all(targets, forms, args.max_length, args.stride, args.batch_size, args.speed_rounds)
    speed = {
        "command": command,
        "machine": machine_summary(),
        "rounds": args.speed_rounds,
        "forms": len(forms),
        "batch_size": args.batch_size,
        "threads": threads,
        "seed": seed,
        "rows": figures,
    }
    atomic.write_json(out / SPEED_FILE, speed)
    return speed
