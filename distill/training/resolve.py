"""A training run resolved once, before anything is written (DESIGN.md: "A run is resolved once").

In this order, in this one place:

1. the options: the layers the user gave (preset, config file, flags: `layered_options`) and,
   when the run directory holds a run, its record, laid over the defaults in one pass by
   `assemble_config`, the one place a TrainConfig is built: an option no layer set takes the
   recorded value (an unset --labels is the run's recorded set), one they set must agree with
   it, compared after normalising (label spacing, `dir/` against `dir`);
2. the same pass again once the data is loaded, with its labels fixed;
3. the data and its labels, then the teachers (loaded, their labels checked) and the loss terms;
4. the students: `teacher:N` (the teacher's own layers, its tokenizer) or a model of its own, and
   the layer-to-layer terms mapped to both models' layers (refused when the tokenizers differ).

The result, a `ResolvedRun`, is what every stage reads. Nothing is written here: the run's
config.toml is written only once this returns (`record_run`), so a refused run leaves nothing
behind, and the same command finds its own run again.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal

import datasets

from distill import atomic
from distill.config import NOT_RUN_DEFINING, PRESETS, TrainConfig, read_values
from distill.data import check_word_boxes, data_word_boxes, source_kind
from distill.data.run_data import load_run_data_noted, run_labels
from distill.errors import DistillError
from distill.labels import LabelSet, check_model_labels
from distill.machine import is_main_process
from distill.models import Bundle, load_bundle
from distill.predict.ocr import check_tesseract
from distill.run_dir import CONFIG, TEACHER, new_run_dir, read_config
from distill.student_spec import is_teacher_spec, parse_spec
from distill.terms.declared import (
    PLAIN,
    LossTerm,
    declared_teacher_terms,
    declared_terms,
    describe,
    distils,
    intermediate_matches_record,
    is_layer_term,
    mapped_terms,
)
from distill.terms.layers import Shape, shape_of
from distill.training.preflight import check_settings
from distill.training.tokenizers import check_tokenizers

# --- 1. the options, and 2. the run directory's record: assembled in one pass --------------------


@dataclass(frozen=True)
class Options:
    """What the user asked for, layer by layer: a preset's values, a config file's, the flags'.

    Only the options each layer sets; `assemble_config` lays them over the defaults (and the run
    directory's record) in one pass. `given`: the options any layer set.
    """

    preset: Mapping[str, Any] = field(default_factory=dict)
    file: Mapping[str, Any] = field(default_factory=dict)
    flags: Mapping[str, Any] = field(default_factory=dict)

    @property
    def given(self) -> frozenset[str]:
        return frozenset(self.preset) | frozenset(self.file) | frozenset(self.flags)

    @property
    def config(self) -> TrainConfig:
        """The options as asked, before a run directory's record or the data (no labels fixed)."""
        return assemble_config(self)[0]

    @classmethod
    def of(cls, config: TrainConfig) -> Options:
        """A whole configuration (the Python API): every option counts as set, except an empty labels."""
        values = {f.name: getattr(config, f.name) for f in fields(TrainConfig)}
        if not config.labels:
            del values["labels"]
        return cls(flags=values)


def layered_options(
    flags: Mapping[str, Any], preset: str | None = None, config_file: str | None = None
) -> Options:
    """The command line's layers (whatever their order on it), each checked: an unknown option in the
    config file names the file, a bad combination fails here, before any data or model is loaded."""
    file: dict[str, Any] = {}
    if config_file is not None:
        file = read_values(config_file)
        # A run's config.toml names its own run directory: reusing the file for a new run must not
        # write into that run. The output directory comes from --output-dir alone.
        if file.pop("output_dir", ""):
            print(
                f"note: {config_file}: output_dir ignored (pass --output-dir to choose the run directory)",
                file=sys.stderr,
            )
    options = Options(
        dict(PRESETS[preset]) if preset is not None else {},
        file,
        {key.replace("-", "_"): value for key, value in flags.items()},
    )
    assemble_config(options)  # validated now
    return options


PATH_OPTIONS = ("data", "teacher", "student", "teacher_dir")


def normal_path(value: str) -> str:
    """A local path written one way: `dir/`, `./dir` and `dir//` are `dir` (hub ids and names unchanged)."""
    if not value or not (Path(value).expanduser().exists() or value.startswith((".", "/", "~"))):
        return value  # a hub id, `tiny`, `synthetic`: not a path
    path = os.path.normpath(value)
    if value.startswith(".") and not path.startswith((".", "/")):
        path = os.path.join(".", path)  # ./a/b stays a path, never reads as the hub id a/b
    return path


def normalisation(config: TrainConfig) -> tuple[dict[str, Any], list[str]]:
    """The options written one way, so that the same command always compares equal (as changes to
    `config`); and notes on options that were given but cannot apply."""
    changes: dict[str, Any] = {}
    notes: list[str] = []
    if config.labels.strip():
        changes["labels"] = LabelSet.parse(config.labels).option()
    if source_kind(config.data) == "local":
        changes["data"] = normal_path(config.data)
    changes["teacher"] = normal_path(config.teacher)
    changes["student"] = normal_path(config.student)
    members = [normal_path(d.strip()) for d in config.teacher_dir.split(",") if d.strip()]
    changes["teacher_dir"] = ",".join(members)
    transfer = config.transfer_copies or config.transfer_ocr.strip()
    if transfer and not config.transfer_hard_tags and not distils(declared_terms(config)):
        notes.append(
            f"--transfer-copies {config.transfer_copies} ignored: the student does not distil "
            "(--alpha 0 and --feature-weight 0), so no teacher labels a transfer set, and without "
            "--transfer-hard-tags (the control) its changed words would teach nothing; recorded as 0"
        )
        changes["transfer_copies"] = 0
        changes["transfer_ocr"] = ""
    return changes, notes


def normal_values(config: TrainConfig) -> dict[str, Any]:
    """Every option of `config`, normalised: what two runs' records are compared by."""
    return {f.name: getattr(config, f.name) for f in fields(TrainConfig)} | normalisation(config)[0]


def recorded_values(options: Options, recorded: TrainConfig) -> dict[str, Any]:
    """The run directory's record of the run-defining options no layer set (nor an empty --labels)."""
    layered = {**options.preset, **options.file, **options.flags}
    return {
        f.name: getattr(recorded, f.name)
        for f in fields(TrainConfig)
        if f.name not in NOT_RUN_DEFINING
        and (f.name not in options.given or (f.name == "labels" and not layered.get("labels")))
    }


def assemble_config(
    options: Options,
    recorded: TrainConfig | None = None,
    labels: LabelSet | None = None,
    word_boxes: bool | None = None,
) -> tuple[TrainConfig, list[str]]:
    """The run's TrainConfig, built in this one place, in one direction.

    Layers in order: the defaults, the preset, the config file, the run directory's record (for
    the run-defining options none of those set), the flags; the result normalised (paths, label
    spacing); then, once the data is loaded, its labels and its box mode. Returns the config and notes on options
    that cannot apply.
    """
    values: dict[str, Any] = {**options.preset, **options.file}
    if recorded is not None:
        values |= recorded_values(options, recorded)
    values |= options.flags
    config = TrainConfig().updated(values).validate()
    changes, notes = normalisation(config)
    if labels is not None:
        changes["labels"] = labels.option()  # later stages and reruns read this set
    if word_boxes is not None:
        changes["word_boxes"] = word_boxes  # the box mode the data had: predict gives the same
    return config.updated(changes).validate(), notes


def _resolved(value: str) -> list[Path] | None:
    """The directories a path option names (several for --teacher-dir A,B), or None unless all exist."""
    paths = [Path(v).expanduser() for v in value.split(",") if v]
    return [p.resolve() for p in paths] if paths and all(p.exists() for p in paths) else None


def _same(name: str, old: Any, new: Any) -> bool:
    if old == new:
        return True
    if name not in PATH_OPTIONS or not isinstance(old, str) or not isinstance(new, str):
        return False
    # The same directory named another way (a relative path against an absolute one).
    return _resolved(old) is not None and _resolved(old) == _resolved(new)


def run_defining_differences(old: TrainConfig, new: TrainConfig) -> list[str]:
    """`--option old -> new` for each run-defining option that differs (after normalising both)."""
    before, after = normal_values(old), normal_values(new)
    return [
        f"--{f.name.replace('_', '-')} {before[f.name]!r} -> {after[f.name]!r}"
        for f in fields(TrainConfig)
        if f.name not in NOT_RUN_DEFINING and not _same(f.name, before[f.name], after[f.name])
    ]


def resumed_options(
    run: Path, options: Options, labels: LabelSet | None = None
) -> tuple[TrainConfig, TrainConfig | None, list[str]]:
    """The options of a run in `run`: unset ones from its record, all normalised; refused when a
    run-defining option set differs from the record. Returns (config, the record or None, notes).

    Its models, checkpoints and metrics belong to the options in its config.toml: continuing it
    with another seed, data or model would mix two experiments under one name.
    """
    recorded = read_config(run) if (run / CONFIG).is_file() else None
    config, notes = assemble_config(options, recorded, labels)
    if recorded is not None:
        differences = run_defining_differences(recorded, config)
        if differences:
            raise DistillError(
                "this run directory holds a run with other options (" + "; ".join(differences) + "): "
                "pass a new --output-dir for a new run, or repeat the run's options to resume it",
                run,
            )
    return config, recorded, notes


def check_resumable(run: Path, options: Options | TrainConfig) -> None:
    """Refuse options that would continue `run` as another experiment (see resumed_options)."""
    resumed_options(run, options if isinstance(options, Options) else Options.of(options))


# --- 3. data, labels, teachers ------------------------------------------------------------------

TeacherSource = Literal["train", "dir", "ensemble", "run", "none"]


@dataclass(frozen=True)
class Teachers:
    """Where the run's teacher comes from, and the loaded models where it already exists.

    train: fine-tuned here from --teacher; dir: one --teacher-dir; ensemble: several --teacher-dir
    (their word logits averaged); run: finished earlier in this run directory; none: no teacher
    (--stage student without distillation).
    """

    source: TeacherSource
    bundles: tuple[Bundle, ...] = ()
    paths: tuple[str, ...] = ()


def load_labelled(path: str | Path, labels: LabelSet) -> Bundle:
    """A fine-tuned model directory, refused when it was trained on other labels than the run's."""
    bundle = load_bundle(path)
    check_model_labels(bundle.model.config.id2label, labels, path)
    return bundle


def resolve_teachers(config: TrainConfig, run: Path, labels: LabelSet, distilling: bool) -> Teachers:
    members = [d for d in config.teacher_dir.split(",") if d]
    if len(members) > 1 and config.feature_weight > 0:
        raise DistillError(
            "feature distillation needs one teacher, not an ensemble (--teacher-dir A,B): word vectors "
            "are one model's own space"
        )
    if len(members) > 1 and (
        is_teacher_spec(config.student) or config.hidden_weight or config.attention_weight
    ):
        raise DistillError(
            "--student teacher:N and layer-to-layer distillation need one teacher, not an ensemble "
            "(--teacher-dir A,B): they read one model's own layers"
        )
    if members:
        bundles = tuple(load_labelled(d, labels) for d in members)
        return Teachers("ensemble" if len(members) > 1 else "dir", bundles, tuple(members))
    finished = run / TEACHER
    if (finished / "config.json").is_file() and (config.resume or config.stage == "student"):
        return Teachers("run", (load_labelled(finished, labels),), (str(finished),))
    if config.stage != "student":
        return Teachers("train")
    if not distilling and not is_teacher_spec(config.student):
        return Teachers("none")  # plain fine-tuning of the student: no teacher to train, load or score
    if is_teacher_spec(config.student):
        raise DistillError(
            f"--student {config.student} is built from the fine-tuned teacher: pass --teacher-dir, train "
            "one with --stage teacher, or fine-tune a student of its own without distillation (--alpha 0)",
            run,
        )
    raise DistillError(
        "--stage student needs a fine-tuned teacher to distil from: pass --teacher-dir, train one with "
        "--stage teacher, or fine-tune without distillation (--alpha 0 --feature-weight 0)",
        run,
    )


# --- 4. the students ----------------------------------------------------------------------------


@dataclass(frozen=True)
class StudentPlan:
    """How the run's students are built (stages/students.py builds them).

    A model of its own from --student (a hub id, a directory, `tiny`: no teacher layers), or for
    `teacher:N` the fine-tuned teacher's embeddings, classifier and `teacher_layers`
    (teacher_init.py), with the teacher's tokenizer.
    """

    teacher_layers: tuple[int, ...] = ()

    @property
    def from_teacher(self) -> bool:
        return bool(self.teacher_layers)


def resolve_students(
    config: TrainConfig, teachers: Teachers, terms: tuple[LossTerm, ...]
) -> tuple[StudentPlan, tuple[LossTerm, ...]]:
    """The students' plan, and the terms with their layer-to-layer ones mapped to both models' layers.

    Read from the models' configurations (the loaded teacher's, or the one it will be fine-tuned
    from), so a `teacher:13` of a 12-layer teacher, or layer matching across tokenizers, is refused
    before the teacher trains. A teacher-only run resolves its students when a student stage runs.
    """
    from_teacher = is_teacher_spec(config.student)
    if config.stage == "teacher" or not (from_teacher or any(is_layer_term(t) for t in terms)):
        return StudentPlan(), terms
    if teachers.bundles:
        teacher, teacher_name = Shape.of(teachers.bundles[0].model.config), teachers.paths[0]
    else:
        teacher, teacher_name = shape_of(config.teacher), config.teacher
    if from_teacher:  # the teacher's own tokenizer: layer matching always lines up
        chosen = tuple(
            parse_spec(config.student).chosen(teacher.num_hidden_layers, config.teacher_layer_choice)
        )
        student = Shape(len(chosen), teacher.hidden_size)
        return StudentPlan(chosen), mapped_terms(terms, student, teacher, copied=chosen)
    loaded = teachers.bundles[0].tokenizer if teachers.bundles else None
    check_tokenizers(config.student, teacher_name, loaded)
    return StudentPlan(), mapped_terms(terms, shape_of(config.student), teacher)


# --- the resolved run ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ResolvedRun:
    """Everything a training run is, settled before it writes: what every stage reads."""

    config: TrainConfig  # every option, normalised, labels fixed: what config.toml records
    dir: Path
    resumes: bool  # the directory already held this run (config.toml)
    data: datasets.DatasetDict  # train and test (or held-out) forms, in the run's labels
    labels: LabelSet
    data_notes: tuple[str, ...]  # what the report says about the data
    teachers: Teachers
    terms: tuple[
        LossTerm, ...
    ]  # the distilled student's loss (distill/terms/declared.py), layer terms mapped
    teacher_terms: tuple[LossTerm, ...] = PLAIN  # the teacher's fine-tuning loss (--teacher-loss)
    student: StudentPlan = StudentPlan()  # how its students are built (a model of their own by default)

    @property
    def train(self) -> datasets.Dataset:
        return self.data["train"]

    @property
    def test(self) -> datasets.Dataset:
        return self.data["test"]

    @property
    def validation(self) -> datasets.Dataset | None:
        """--validation-forms: training forms held out of every model's training, to choose epochs."""
        return self.data["validation"] if "validation" in self.data else None

    @property
    def train_words(self) -> list[str]:
        """Every training word (the tiny preset trains its tokenizers on them)."""
        return [w for form in self.train["tokens"] for w in form]

    @property
    def distils(self) -> bool:
        return distils(self.terms)

    @property
    def trains_students(self) -> bool:
        return self.config.stage in ("student", "all")


def resolve_run(options: Options | TrainConfig) -> ResolvedRun:
    """Settle the run: options, the run directory's record, data, labels, teachers. Writes nothing."""
    if isinstance(options, TrainConfig):
        options = Options.of(options)
    run = new_run_dir(options.flags.get("output_dir"))  # only a flag names it (a file's is ignored)
    options = replace(options, flags={**options.flags, "output_dir": str(run)})
    config, recorded, notes = resumed_options(run, options)
    check_settings(config)  # before any data or model is loaded
    if config.transfer_ocr.strip():
        check_tesseract("eng")  # the OCR views need it: said now, not after the teacher has trained
    if config.word_boxes and "word_boxes" in options.given:
        check_word_boxes(config.data)
    data, data_notes = load_run_data_noted(config)
    labels = run_labels(data)
    boxes = data_word_boxes(config.data, config.word_boxes, data["train"])
    # The same pass, now with the data's labels and box mode.
    config = assemble_config(options, recorded, labels, boxes)[0]
    terms = declared_terms(config)
    # The transfer set's word candidates are the teacher's own embeddings, for the control too.
    neighbours = config.transfer_copies > 0 and config.transfer_candidates == "neighbours"
    teachers = resolve_teachers(config, run, labels, distils(terms) or neighbours)
    student, terms = resolve_students(config, teachers, terms)
    if is_main_process():  # what the run will do differently from what was asked, and why
        for note in [*notes, *data_notes]:
            print(f"note: {note}", file=sys.stderr, flush=True)
    return ResolvedRun(
        config,
        run,
        recorded is not None,
        data,
        labels,
        tuple(data_notes),
        teachers,
        terms,
        declared_teacher_terms(config),
        student,
    )


def config_text(run: ResolvedRun) -> str:
    """config.toml: every option, and (as comments: the options are the record) the losses they declare,
    the layer-to-layer terms TextBrewer-style, one inline table per matched layer pair."""
    lines = [f"# distilled student's {describe(run.terms)}"]
    if run.teachers.source == "train":
        lines.append(f"# teacher's {describe(run.teacher_terms)}")
    matches = intermediate_matches_record(run.terms)
    if matches:
        lines.append("# intermediate_matches = [  (TextBrewer-style; proj left out where the widths agree)")
        lines += [f"#   {_inline(m)}," for m in matches]
        lines.append("# ]")
    return "\n".join(lines) + "\n" + run.config.to_toml()


def _inline(record: Mapping[str, Any]) -> str:
    """A TOML inline table (tomli_w writes no inline tables on their own); None as TOML has none: omitted."""
    import tomli_w

    # tomli_w writes an array over several lines: joined, so the table stays on its one comment line.
    pairs = (" ".join(tomli_w.dumps({k: v}).split()) for k, v in record.items() if v is not None)
    return "{ " + ", ".join(pairs).replace("[ ", "[").replace(", ]", "]") + " }"


def record_run(run: ResolvedRun, main: bool) -> None:
    """Write config.toml, now that the run stands (rank 0 only)."""
    if main:
        run.dir.mkdir(parents=True, exist_ok=True)
        atomic.write_text(run.dir / CONFIG, config_text(run))
