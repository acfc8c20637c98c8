"""The FUNSD study's tables: each row's records collected from its runs, rendered as reports/funsd*.md."""

from __future__ import annotations

import argparse
import shlex
import statistics
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from distill.commands import named_path, placeholder_note
from distill.errors import DistillError
from distill.machine import machine_summary, package_versions
from distill.predict.loading import recommended_cpu_variant
from distill.run_dir import read_json
from distill.studies.funsd_plan import (
    ENSEMBLE,
    LAYOUT,
    LAYOUT_STUDENT,
    TEACHER_ROW,
    TEXT,
    WALL,
    Row,
    best_text_kd,
    plain_row,
    run_dir,
    study_rows,
)
from distill.studies.funsd_targets import best_student, cost_section, fmt, known, verdict
from distill.studies.speed import variant_record
from distill.tables import run_types


def int8_record(run: Path, model: str) -> dict[str, Any] | None:
    """The int8 variant of `model` in the run's export manifest, if it was exported."""
    path = run / "onnx" / "manifest.json"
    if not path.is_file():
        return None
    variants = read_json(path).get("models", {}).get(model, {}).get("variants", {})
    return variants.get("int8")


def collect(out: Path, args: argparse.Namespace) -> dict[Row, list[dict[str, Any]]]:
    """Per row, one record per seed: the model's scores plus its run's int8 export, KD cost, wall time."""
    rows: dict[Row, list[dict[str, Any]]] = {row: [] for row in study_rows(args)}
    for seed in args.seeds:
        for row in rows:
            run, model = run_dir(out, seed, row, args)
            path = run / "metrics.json"
            metrics = read_json(path) if path.is_file() else {}
            if model not in metrics.get("models", {}):  # not finished
                if args.partial:
                    continue
                raise DistillError(
                    "missing: this run did not finish (--partial reports finished runs only)", path
                )
            record = dict(metrics["models"][model])
            record["seed"] = seed
            record["run"] = str(run.relative_to(out))  # under the study's output directory: portable
            record["int8"] = int8_record(run, model)
            recommended = recommended_cpu_variant(run, model)
            if recommended is not None:
                record["recommended"] = {
                    "variant": recommended[1],
                    **(variant_record(run, model, recommended[1]) or {}),
                }
            record["teacher_cache_seconds"] = metrics.get("teacher_cache_seconds", 0.0)
            record["teacher_targets"] = metrics.get("teacher_targets", "computed")
            record["test_forms"] = metrics.get("test_forms")
            record["wall_seconds"] = read_json(run / WALL)["seconds"] if (run / WALL).is_file() else None
            if row is TEACHER_ROW and (source := reused_teacher(run)) is not None:
                record["reused_from"] = source
                record["train_seconds"] = source["train_seconds"]  # the cost was paid in that run
            rows[row].append(record)
        if args.teacher == ENSEMBLE and rows[TEACHER_ROW] and rows[TEACHER_ROW][-1]["seed"] == seed:
            # an ensemble costs what its members cost
            members = [r for row in (TEXT, LAYOUT) for r in rows[row] if r["seed"] == seed]
            rows[TEACHER_ROW][-1]["train_seconds"] = sum(m.get("train_seconds", 0.0) for m in members)
    return rows


def reused_teacher(run: Path) -> dict[str, Any] | None:
    """Where a teacher run given `--teacher-dir` got its teacher: that run's data and budget.

    A study may score a teacher trained elsewhere (e.g. the tuning run on held-out forms); its
    report must say which forms that teacher saw and what its training cost, not this run's.
    """
    config_path = run / "config.toml"
    if not config_path.is_file():
        return None
    teacher_dir = tomllib.loads(config_path.read_text(encoding="utf-8")).get("teacher_dir", "")
    if not teacher_dir or "," in teacher_dir:
        return None
    source = Path(teacher_dir).parent
    if not (source / "metrics.json").is_file() or not (source / "config.toml").is_file():
        return None
    config = tomllib.loads((source / "config.toml").read_text(encoding="utf-8"))
    metrics = read_json(source / "metrics.json")
    teacher = metrics.get("models", {}).get("teacher", {})
    return {
        "run": source.name,
        "train_forms": metrics.get("train_forms"),
        "holdout_forms": config.get("holdout_forms", 0),
        "epochs": config.get("teacher_epochs") or config.get("epochs"),
        "lr": config.get("teacher_lr"),
        "loss": config.get("teacher_loss", "ce"),
        "seed": config.get("seed"),
        "train_seconds": teacher.get("train_seconds", 0.0),
    }


def reused_note(rows: dict[Row, list[dict[str, Any]]]) -> str:
    source = next((r["reused_from"] for r in rows.get(TEACHER_ROW, []) if r.get("reused_from")), None)
    if source is None:
        return ""
    held_out = f" ({source['holdout_forms']} held out for tuning)" if source["holdout_forms"] else ""
    return (
        f". This teacher was not trained by the study: it is reused (`--teacher-dir`) from the run "
        f"`{source['run']}`, which trained it on {source['train_forms']} training forms{held_out} for "
        f"{source['epochs']:g} epochs at lr {source['lr']:g} ({source['loss']} loss, seed {source['seed']}), "
        f"in {source['train_seconds']:.0f} s; the scored split took no part in its training or tuning"
    )


def teacher_description(args: argparse.Namespace) -> str:
    return {
        ENSEMBLE: "an ensemble of the seed's plain text-only and layout-aware students (word logits averaged)",
        LAYOUT_STUDENT: f"the layout-aware student's architecture trained for {args.teacher_epochs:g} epochs "
        f"at lr {args.teacher_lr:g}",
    }.get(
        args.teacher,
        f"`{as_shown(args.teacher, args)}` fine-tuned {'as it is (a token classifier on words)' if args.teacher_as_is else 'as a LayoutLMv3'} "
        f"for {args.teacher_epochs:g} epochs at lr {args.teacher_lr:g}",
    )


def overhead_cell(row: Row, records: list[dict[str, Any]], plain: list[dict[str, Any]]) -> str:
    """Teacher targets (and transfer set) computed for this run, as a share of the plain student's training."""
    if not row.distilled:
        return "—"
    plain_seconds = {p["seed"]: p["train_seconds"] for p in plain}
    # A run that read the targets another run computed (cache.py) paid nothing for them.
    computed = [r for r in records if r.get("teacher_targets") != "cache"]
    reused = len(records) - len(computed)
    read = "read the teacher's targets from the study's cache"
    note = f"; {reused} of {len(records)} runs {read}" if reused else ""
    if not computed:
        return f"none: {'the run' if reused == 1 else f'all {reused} runs'} {read}"
    shares = [
        r["teacher_cache_seconds"] / plain_seconds[r["seed"]] for r in computed if r["seed"] in plain_seconds
    ]
    if not shares:
        return "plain run not finished"
    seconds = statistics.fmean(r["teacher_cache_seconds"] for r in computed)
    return f"{seconds:.0f} s ({fmt(shares, 100.0, 0)} %){note}"


def render(
    rows: dict[Row, list[dict[str, Any]]],
    args: argparse.Namespace,
    command: str,
    speed: dict[str, Any] | None = None,
    frontier_name: str = "funsd-frontier.png",
) -> str:
    # The forms scored, as the runs' metrics.json counted them (whatever --data was).
    forms = next((r["test_forms"] for recs in rows.values() for r in recs if r.get("test_forms")), None)
    split = (
        f"{args.holdout_forms} held-out training forms (tuning; the test split is not used)"
        if args.holdout_forms
        else "the test split" + (f" ({forms} forms)" if forms else "")
    )
    versions = ", ".join(
        f"{k} {v}" for k, v in package_versions(("torch", "transformers", "datasets")).items()
    )
    # One entry per run directory: a shared teacher is one run, however many seeds it serves.
    walls = list(
        {
            r["run"]: r["wall_seconds"] for recs in rows.values() for r in recs if r.get("wall_seconds")
        }.values()
    )
    shared = args.teacher != ENSEMBLE and args.teacher_seed is not None
    lines = [
        "# FUNSD: teacher and students, mean ± std over seeds",
        "",
        f"Written by `{command}`"
        + (f" ({note})." if (note := placeholder_note(*command_placeholders(args), command)) else "."),
        "",
        f"Data `{args.data}`; scored on {split}; seeds {', '.join(map(str, args.seeds))}; "
        f"measured on {machine_summary()}; {versions}. "
        f"Wall time: {sum(walls) / 3600:.1f} h summed over the study's {len(walls)} runs "
        f"(their `distill.train` calls, resumed parts included), {args.jobs} at a time.",
        f"Students from `{as_shown(args.student, args)}` ({args.student_epochs:g} epochs, lr {args.student_lr:g}); "
        f"teacher: {teacher_description(args)}"
        f"{f' (one run, seed {args.teacher_seed}, shared by the students of every seed)' if shared else ''}"
        f"{reused_note(rows)}; "
        f"new box embeddings start {args.box_init}, lr {args.box_lr or args.student_lr:g}; windows of "
        f"{args.max_length} sub-tokens, stride {args.stride}, batch {args.batch_size}"
        f"{', bf16 mixed precision' if args.bf16 else ''}"
        f"{'; every run also given `' + shlex.join(args.train_options) + '`' if args.train_options else ''}.",
        "",
        "Methods (word-level, see the README): vanilla KD = soft targets, "
        f"T = {args.temperature:g}, alpha = {args.alpha:g}"
        + (
            f"; best KD = vanilla plus `{args.best_kd}`."
            if args.best_kd
            else " (no `--best-kd` was given: vanilla KD is the best method this study reports)."
        ),
        "",
        "| model | seeds | entity P | entity R | entity F1 | word acc. | params | train time | KD overhead (teacher targets; share of plain training) | int8 F1 | int8 ΔF1 vs PyTorch |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    # The tables show a shared teacher once (one run: no spread); the paired differences keep it per seed.
    shown = {row: recs[:1] if row is TEACHER_ROW and shared else recs for row, recs in rows.items()}
    for row, records in shown.items():
        seeds = (
            f"{args.teacher_seed} (shared)"
            if row is TEACHER_ROW and shared
            else ", ".join(str(r["seed"]) for r in records)
        )
        if not records:
            lines.append(f"| {row.label} | none yet |" + " not run yet |" * 9)
            continue
        int8 = [r["int8"] for r in records if r.get("int8")]
        int8_cells = ["not exported"] * 2
        if int8:
            int8_cells = [
                fmt([v["f1"] for v in int8]),
                fmt([v["delta_f1_points"] for v in int8], 1.0, 2, signed=True),
            ]
        plain = rows[plain_row(row, list(rows))]
        lines.append(
            f"| {row.label} | {seeds} | {fmt([r['precision'] for r in records])} | {fmt([r['recall'] for r in records])} | "
            f"**{fmt([r['f1'] for r in records])}** | {fmt([r['word_accuracy'] for r in records])} | "
            f"{records[0]['params'] / 1e6:.1f} M | {fmt([r.get('train_seconds', 0.0) for r in records], 1.0, 0)} s | "
            f"{overhead_cell(row, records, plain)} | " + " | ".join(int8_cells) + " |"
        )
    # The runs' own labels (their per-type scores), not a list fixed here.
    types = run_types({f"{row.label}/{i}": r for row, recs in rows.items() for i, r in enumerate(recs)})
    lines += [
        "",
        "int8 columns: `python -m export.onnx --models student` on each run; ΔF1 is against that export's "
        "own PyTorch score. KD overhead: the teacher's pass over the student's training forms (and the "
        "transfer set, if any), averaged over the runs that computed it: a run that found the same "
        "teacher's targets for the same forms in the study's cache (`<output-dir>/teacher-cache`) read "
        "them instead; the teacher's own fine-tuning is its row's train time, paid once "
        + ("for the whole study." if shared else "per seed."),
        "",
        "Entity F1 per type:",
        "",
        "| model | " + " | ".join(types) + " |",
        "|---|" + "---:|" * len(types),
    ]
    for row, records in shown.items():
        if not records:
            continue
        cells = [fmt([r["per_type"][t]["f1"] for r in records if t in r["per_type"]]) for t in types]
        lines.append(f"| {row.label} | " + " | ".join(cells) + " |")

    def diffs(a: Row, b: Row, seeds: set[int] | None = None) -> list[float]:
        """F1 differences over the seeds both rows have finished (and in `seeds`), paired by seed."""
        other = {r["seed"]: r["f1"] for r in rows[b] if seeds is None or r["seed"] in seeds}
        return [(x["f1"] - other[x["seed"]]) * 100.0 for x in rows[a] if x["seed"] in other]

    def mean_diff(a: Row, b: Row, seeds: set[int] | None = None) -> float:
        found = diffs(a, b, seeds)
        return statistics.fmean(found) if found else float("nan")

    def paired(a: Row, b: Row) -> str:
        found = diffs(a, b)
        if not found:
            return "not measured yet"
        n = len(found)
        # Two decimals and a sign, as the verdicts print them: 7.99 must not read as a met 8.0.
        return fmt(found, 1.0, 2, signed=True) + (
            "" if n == len(args.seeds) else f" (over {n} of {len(args.seeds)} seeds)"
        )

    best = best_text_kd(list(rows))
    kd_rows = [r for r in rows if r.distilled]
    gap = mean_diff(TEACHER_ROW, TEXT)
    # The share recovered, over the seeds the best method has finished (the gap on those same seeds).
    gap_there = mean_diff(TEACHER_ROW, TEXT, {r["seed"] for r in rows[best]})
    recovered = mean_diff(best, TEXT) / gap_there if gap_there > 0 else float("nan")
    top = best_student(rows)
    best_int8 = [r["int8"]["delta_f1_points"] for r in rows[top] if r.get("int8")]
    lines += [
        "",
        "Differences in entity F1 points, paired by seed (mean ± std):",
        "",
        f"- teacher over the plain text-only student: {paired(TEACHER_ROW, TEXT)}",
        f"- layout-aware over text-only student: {paired(LAYOUT, TEXT)}",
        *[f"- {row.label} over plain: {paired(row, plain_row(row, list(rows)))}" for row in kd_rows],
        f"- share of the teacher–student gap the best text-only method ({best.label}) recovers: "
        f"{100 * recovered:.0f} %",
        "",
        "Against the targets (means over seeds):",
        "",
        verdict(
            f"the teacher beats the plain text-only student by ≥ 8 F1 points ({gap:+.2f})",
            known(gap, gap >= 8.0),
        ),
        verdict(
            f"the best method ({best.label}) raises the text-only student by ≥ 2.0 F1 points "
            f"({mean_diff(best, TEXT):+.2f})",
            known(mean_diff(best, TEXT), mean_diff(best, TEXT) >= 2.0),
        ),
        verdict(
            f"it recovers ≥ 25 % of the teacher–student gap ({100 * recovered:.0f} %)",
            known(recovered, recovered >= 0.25),
        ),
        verdict(
            f"int8 of the best student ({top.label}) loses ≤ 1.0 F1 point",
            bool(best_int8) and statistics.fmean(best_int8) >= -1.0,
            f" ({statistics.fmean(best_int8):+.2f}, {len(best_int8)} of {len(rows[top])} seeds exported)"
            if best_int8
            else " (not exported yet)",
        ),
    ]
    lines += cost_section(rows, args, speed, frontier_name)
    return "\n".join(lines) + "\n"


# distill.train options that tell one tuning run from another, as config.toml spells them.
TUNED = ("student", "student_layout", "epochs", "student_lr", "alpha", "temperature", "feature_weight",
         "feature_loss", "hidden_weight", "attention_weight", "transfer_copies")  # fmt: skip


def tuning_table(out: Path, seeds: Sequence[int]) -> str:
    """Every student run found under the seeds, with the options that define it: the tuning record."""
    found: dict[str, dict[int, tuple[dict[str, Any], float]]] = {}
    for seed in seeds:
        for path in sorted((out / f"seed{seed}").glob("*/metrics.json")):
            record = read_json(path)["models"].get("student")
            if record is None:
                continue
            config = tomllib.loads((path.parent / "config.toml").read_text())
            found.setdefault(path.parent.name, {})[seed] = (config, record["f1"] * 100.0)
    lines = [
        "| run | " + " | ".join(TUNED) + " | entity F1 per seed | mean |",
        "|---|" + "---|" * len(TUNED) + "---|---:|",
    ]
    for kind, per_seed in sorted(
        found.items(), key=lambda kv: -statistics.fmean(f for _, f in kv[1].values())
    ):
        config = next(iter(per_seed.values()))[0]
        scores = [f for _, f in per_seed.values()]
        lines.append(
            f"| {kind} | "
            + " | ".join(str(config.get(k, "")) for k in TUNED)
            + " | "
            + ", ".join(f"{f:.1f}" for f in scores)
            + f" | **{statistics.fmean(scores):.1f}** |"
        )
    return "\n".join(lines) + "\n"


def as_shown(value: object, args: argparse.Namespace) -> str:
    """A path as the report prints it: an absolute model directory by its placeholder ($T, $M), as
    in the command (no reader has this machine's paths); anything else as given."""
    paths, _ = command_placeholders(args)
    return next((name for name, path in paths.items() if path is not None and path == str(value)), str(value))


def shown_paths(value: Any, args: argparse.Namespace) -> Any:
    """`value` (the report's JSON) with every string that is, or lies under, an absolute model or
    output directory of the command written as its placeholder, as the markdown writes it."""
    named = {name: path for name, path in command_placeholders(args)[0].items() if path is not None}

    def shown(item: Any) -> Any:
        if isinstance(item, dict):
            return {key: shown(inner) for key, inner in item.items()}
        if isinstance(item, list):
            return [shown(inner) for inner in item]
        if isinstance(item, str) and item.startswith(("/", "~")):
            hit = named_path(Path(item).expanduser(), named)
            if hit is not None:
                return hit[0] if hit[1] == "." else f"{hit[0]}/{hit[1]}"
        return item

    return shown(value)


def command_placeholders(args: argparse.Namespace) -> tuple[dict[str, str | None], dict[str, str]]:
    """Placeholders for the absolute model and output directories in the command (distill/commands.py)."""

    def absolute(value: object) -> str | None:
        return str(value) if str(value).startswith(("/", "~")) else None

    paths = {"$T": absolute(args.teacher), "$M": absolute(args.student), "$OUT": absolute(args.output_dir)}
    meaning = {"$T": "the teacher's model directory", "$M": "the students' model directory"}
    meaning["$OUT"] = "the study's output directory"
    return paths, meaning
