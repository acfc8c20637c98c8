"""The resolved configuration of a training run: every default written out to config.toml."""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import tomli_w

from distill import atomic
from distill.errors import DistillError
from distill.option_checks import (  # noqa: F401 (HIDDEN_LOSSES: the terms read the choices here)
    HIDDEN_LOSSES,
    MAX_COPIES,
    validate_student_options,
    validate_transfer_options,
)

HUB_DATASET = "nielsr/funsd-layoutlmv3"
TEACHER_DEFAULT = "microsoft/layoutlmv3-base"
STUDENT_DEFAULT = "distilbert-base-uncased"
TINY = "tiny"  # the offline preset's models, built from small configs (distill/builders.py)

# The choices of the options that name a loss or an initialisation; the terms (distill/terms/) and
# the builders implement each name, and their tests hold the two lists together.
TOKEN_LOSSES = ("ce", "balanced", "focal", "balanced-focal")  # --teacher-loss
FEATURE_LOSSES = ("cosine", "mse")  # --feature-loss
BOX_INITS = ("zero", "sinusoid", "random")  # --box-init


@dataclass
class TrainConfig:
    """Options of `python -m distill.train` (the CLI's kebab-case names, with underscores)."""

    # data
    data: str = field(
        default=HUB_DATASET,
        metadata={
            "help": "hub dataset id, a local FUNSD release directory, 'synthetic' or 'synthetic-receipts'"
        },
    )
    word_boxes: bool = field(
        default=False, metadata={"help": "local FUNSD: each word's own box instead of its segment's"}
    )
    synthetic_forms: int = field(
        default=64, metadata={"help": "synthetic source: forms in all (a quarter go to the test split)"}
    )
    holdout_forms: int = field(
        default=0,
        metadata={
            "help": "score on this many training forms held out (for tuning) instead of the test split"
        },
    )
    validation_forms: int = field(
        default=0,
        metadata={
            "help": "hold this many training forms out of training to choose the epoch on (with "
            "--patience); the scored split stays the test split (or --holdout-forms)"
        },
    )
    patience: int = field(
        default=0,
        metadata={
            "help": "with --validation-forms: stop a model once this many epochs in a row bring no better "
            "validation entity F1, and keep its best epoch (--epochs: the ceiling; 0: train every epoch)"
        },
    )
    max_words: int = field(default=120, metadata={"help": "synthetic source: most words in one form"})
    labels: str = field(
        default="",
        metadata={
            "help": "entity types, comma-separated, fixing the label set and its order (empty: from "
            "the data; the run's config.toml records the set it used)"
        },
    )
    # models
    teacher: str = field(
        default=TEACHER_DEFAULT,
        metadata={
            "help": f"teacher: hub id, local directory, or '{TINY}'. LayoutLMv3, LayoutLM (v1) and LiLT "
            "are fine-tuned as they are; a text encoder becomes a LayoutLMv3 around its weights "
            "(unless --teacher-as-is)"
        },
    )
    student: str = field(
        default=STUDENT_DEFAULT,
        metadata={
            "help": f"student: hub id, local directory, or '{TINY}' (any encoder); teacher:N (e.g. "
            "teacher:6) builds it from the fine-tuned teacher's embeddings, classifier and N of its "
            "layers (see --teacher-layer-choice), teacher:0,3,6,9 from those layers"
        },
    )
    teacher_layer_choice: str = field(
        default="bottom",
        metadata={
            "help": "which N layers teacher:N keeps: bottom (every other from the bottom: 0, 2, ..., 10 of "
            "12), top (every other ending with the top: 1, 3, ..., 11) or top-heavy (0, 7, 8, ..., 11)"
        },
    )
    student_image: bool = field(
        default=False,
        metadata={
            "help": "a teacher:N student of a LayoutLMv3 teacher that reads the image keeps the image path "
            "(off: text and layout only, the cheaper student)"
        },
    )
    student_layout: bool = field(
        default=False,
        metadata={"help": "give the student each word's box (LayoutLM from the student's text weights)"},
    )
    box_init: str = field(
        default="zero",
        metadata={
            "help": "how the layout-aware student's new box embeddings start: zero, sinusoid or random"
        },
    )
    freeze_boxes: bool = field(
        default=False,
        metadata={
            "help": "keep added box embeddings at their start (with --box-init sinusoid: fixed smooth codes, "
            "so coordinates never seen in training still mean something)"
        },
    )
    teacher_as_is: bool = field(
        default=False,
        metadata={
            "help": "fine-tune a text encoder given as --teacher as it is (AutoModelForTokenClassification: "
            "MPNet, BERT, RoBERTa...) instead of building a LayoutLMv3 teacher around its weights"
        },
    )
    teacher_image: bool = field(
        default=True,
        metadata={
            "help": "a LayoutLMv3 teacher reads the page image (196 patch tokens per window); "
            "--no-teacher-image: text and layout only (visual_embed=False, several times cheaper a step)"
        },
    )
    teacher_loss: str = field(
        default="ce",
        metadata={
            "help": "teacher training loss: ce, balanced (class-weighted by inverse tag frequency), "
            "focal, or balanced-focal (for rare types; see distill/terms/label_losses.py)"
        },
    )
    focal_gamma: float = field(
        default=2.0, metadata={"help": "focusing exponent of the focal losses (0: cross-entropy)"}
    )
    teacher_dir: str = field(
        default="",
        metadata={
            "help": "reuse this fine-tuned teacher (a run's teacher/ directory) instead of training one; "
            "several, comma-separated, make an ensemble teacher (their word logits averaged)"
        },
    )
    stage: str = field(default="all", metadata={"help": "what to train: teacher, student, or all"})
    # encoding
    max_length: int = field(default=512, metadata={"help": "sub-tokens per window"})
    stride: int = field(default=128, metadata={"help": "sub-tokens shared by consecutive windows"})
    # optimisation
    epochs: float = field(
        default=20.0, metadata={"help": "training epochs per model (ignored when --max-steps is set)"}
    )
    teacher_epochs: float = field(
        default=0.0, metadata={"help": "teacher epochs, if different from --epochs (0: same)"}
    )
    max_steps: int = field(
        default=-1, metadata={"help": "optimiser steps per model; overrides epochs when > 0"}
    )
    teacher_lr: float = field(default=5e-5, metadata={"help": "teacher learning rate"})
    student_lr: float = field(default=5e-5, metadata={"help": "student learning rate"})
    box_lr: float = field(
        default=0.0,
        metadata={
            "help": "learning rate of box embeddings added to a text encoder (the layout-aware "
            "student; a teacher built from a text encoder): they start from zero and learn slowly "
            "at a pretrained encoder's rate (0: the model's own rate)"
        },
    )
    batch_size: int = field(default=8, metadata={"help": "windows per device per step"})
    grad_accum: int = field(default=1, metadata={"help": "gradient accumulation steps"})
    warmup_ratio: float = field(
        default=0.1, metadata={"help": "share of steps spent warming up the learning rate"}
    )
    weight_decay: float = field(default=0.01, metadata={"help": "AdamW weight decay"})
    # distillation
    temperature: float = field(default=2.0, metadata={"help": "distillation temperature T"})
    alpha: float = field(
        default=0.5, metadata={"help": "weight of the distillation term (0: plain fine-tuning)"}
    )
    feature_weight: float = field(
        default=0.0,
        metadata={
            "help": "weight of feature distillation: the student's word vectors, through a learned "
            "projection, matched to the teacher's (last layer, first sub-token; 0: off)"
        },
    )
    feature_loss: str = field(
        default="cosine", metadata={"help": "feature distillation distance: cosine (1 - cos) or mse"}
    )
    hidden_weight: float = field(
        default=0.0,
        metadata={
            "help": "layer-to-layer distillation (students sharing the teacher's tokenizer): weight of each "
            "hidden-state match, student layer m <-> teacher layer m * L_T / L_S and the embeddings; a teacher:N "
            "student's layer m <-> the teacher state its copied layer produces (0: off)"
        },
    )
    hidden_loss: str = field(default="mse", metadata={"help": "hidden-state match distance: mse or cosine"})
    attention_weight: float = field(
        default=0.0,
        metadata={
            "help": "layer-to-layer distillation: weight of the last layer's attention-distribution "
            "match, KL(teacher || student) (MiniLM; 0: off)"
        },
    )
    transfer_copies: int = field(
        default=0,
        metadata={
            "help": f"teacher-labelled transfer set: this many augmented copies (at most {MAX_COPIES}) of "
            "each training form join the distilled student's data (segments shuffled, words replaced, "
            "boxes jittered; distill/training/transfer_set.py; 0: off)"
        },
    )
    transfer_replace: float = field(
        default=0.4, metadata={"help": "transfer set: probability that a word is replaced (TinyBERT's 0.4)"}
    )
    transfer_candidates: str = field(
        default="neighbours",
        metadata={
            "help": "transfer set: a replaced word becomes one of its nearest neighbours in the teacher's "
            "input embeddings (numbers: the same shape), or random (any training word)"
        },
    )
    transfer_hard_tags: bool = field(
        default=False,
        metadata={
            "help": "transfer set: a replaced word keeps its tag as a hard label (off: it learns the "
            "teacher's targets only); with --alpha 0, the control: plain fine-tuning on the copies"
        },
    )
    transfer_ocr: str = field(
        default="",
        metadata={
            "help": "transfer set: also Tesseract's reading of each training page at these scales, "
            "comma-separated (e.g. 1,2: as is and enlarged x2), labelled by the teacher; the input "
            "distill.predict sees on scans (empty: none)"
        },
    )
    transfer_schedule: str = field(
        default="joint",
        metadata={
            "help": "joint (every term at once) or two-stage (TinyBERT: the layer-to-layer terms alone for "
            "--epochs, then the other terms for --prediction-epochs; needs a layer term)"
        },
    )
    prediction_epochs: float = field(
        default=3.0, metadata={"help": "two-stage schedule: epochs of the second (prediction) stage"}
    )
    transfer_steps: str = field(
        default="grow",
        metadata={
            "help": "transfer set: grow (each copy adds steps: epochs over all the windows) or same (the "
            "baseline's step count: a copy displaces a real form)"
        },
    )
    teacher_targets_from: str = field(
        default="export",
        metadata={
            "help": "who computes a reused teacher's targets: export (its run's recommended, gated CPU "
            "variant, through distill.predict, where one exists; else PyTorch) or pytorch"
        },
    )
    baseline: bool = field(
        default=True, metadata={"help": "also train a student without distillation, same budget"}
    )
    distil_collapsed_teacher: bool = field(
        default=False,
        metadata={
            "help": "distil from a teacher that predicts one label for nearly every training word "
            "(refused otherwise: its students would learn the collapse)"
        },
    )
    # run
    timing_only: bool = field(
        default=False,
        metadata={"help": "random-weight models at real size (bench.real_size_run): F1 not meaningful"},
    )
    seed: int = field(
        default=42, metadata={"help": "seed for data order, initialisation and synthetic forms"}
    )
    output_dir: str = field(
        default="", metadata={"help": "run directory to write (default runs/<timestamp>)"}
    )
    report_dir: str = field(default="reports", metadata={"help": "where training.md goes"})
    save_steps: int = field(default=0, metadata={"help": "checkpoint every N steps (0: every epoch)"})
    resume: bool = field(
        default=True, metadata={"help": "resume an interrupted run from its last checkpoint"}
    )
    eval_batch_size: int = field(default=16, metadata={"help": "windows per batch at evaluation"})
    fp16: bool = field(default=False, metadata={"help": "mixed precision (CUDA)"})
    bf16: bool = field(default=False, metadata={"help": "bfloat16 mixed precision (CUDA or recent CPUs)"})
    group_by_length: bool = field(
        default=False,
        metadata={
            "help": "batch windows of similar length (within random groups of a few batches): less "
            "padding, so fewer tokens computed per epoch"
        },
    )

    def to_toml(self) -> str:
        return tomli_w.dumps(dataclasses.asdict(self))

    def write(self, path: str | Path) -> None:
        atomic.write_text(path, self.to_toml())

    @classmethod
    def read(cls, path: str | Path) -> TrainConfig:
        """The whole configuration in `path` (unset options at their defaults): a run's config.toml."""
        return cls(**read_values(path))

    def updated(self, values: dict[str, Any]) -> TrainConfig:
        """A copy with `values` applied. A run's options are laid over each other in one place only
        (distill/training/resolve.py: assemble_config); elsewhere a config is read whole (`read`)."""
        return dataclasses.replace(self, **checked_names(values))

    def validate(self) -> TrainConfig:
        if self.stage not in ("teacher", "student", "all"):
            raise DistillError(f"--stage must be teacher, student or all, got {self.stage!r}")
        if self.stride < 0:
            raise DistillError(f"--stride cannot be negative (0: windows without overlap), got {self.stride}")
        if self.stride >= self.max_length:
            raise DistillError(
                f"--stride ({self.stride}) must be smaller than --max-length ({self.max_length})"
            )
        if self.box_init not in BOX_INITS:
            raise DistillError(f"--box-init must be one of {', '.join(BOX_INITS)}, got {self.box_init!r}")
        if self.freeze_boxes and self.box_init == "zero":
            raise DistillError("--freeze-boxes with --box-init zero would keep the boxes at zero: unused")
        if not 0.0 <= self.alpha <= 1.0:
            raise DistillError(f"--alpha must be within 0..1, got {self.alpha}")
        if self.feature_loss not in FEATURE_LOSSES:
            raise DistillError(
                f"--feature-loss must be one of {', '.join(FEATURE_LOSSES)}, got {self.feature_loss!r}"
            )
        if self.feature_weight < 0:
            raise DistillError("--feature-weight cannot be negative")
        if self.validation_forms < 0 or self.patience < 0:
            raise DistillError("--validation-forms and --patience cannot be negative")
        if self.patience and not self.validation_forms:
            raise DistillError("--patience needs --validation-forms: the forms it chooses the epoch on")
        validate_transfer_options(self)
        validate_student_options(self)
        if self.teacher_loss not in TOKEN_LOSSES:
            raise DistillError(
                f"--teacher-loss must be one of {', '.join(TOKEN_LOSSES)}, got {self.teacher_loss!r}"
            )
        if self.focal_gamma < 0:
            raise DistillError(f"--focal-gamma cannot be negative, got {self.focal_gamma}")
        if self.temperature <= 0:
            raise DistillError(f"--temperature must be positive, got {self.temperature}")
        return self


def read_values(path: str | Path) -> dict[str, Any]:
    """Only the options a TOML file sets (unknown names an error): the config-file layer of the CLI.

    Returning just what the file holds, not a whole TrainConfig, is what lets a preset survive a
    partial config file (defaults < preset < config file < flags).
    """
    path = Path(path)
    try:
        values = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise DistillError("no such config file", path) from err
    except tomllib.TOMLDecodeError as err:
        raise DistillError(f"not valid TOML: {err}", path) from err
    return checked_names(values, source=path)  # unknown option names fail here, naming the file


def checked_names(values: dict[str, Any], source: str | Path | None = None) -> dict[str, Any]:
    """`values` with snake-case keys; an unknown option is an error naming `source`."""
    known = {f.name for f in fields(TrainConfig)}
    for key in values:
        if key.replace("-", "_") not in known:
            raise DistillError(f"unknown option {key!r}", source)
    return {key.replace("-", "_"): value for key, value in values.items()}


# Options that change what a run trains and scores. Resuming a run directory with any of them
# different would mix two experiments in one run, so it is refused (distill/training/resolve.py); the others (where
# reports go, evaluation batch size, precision, checkpoint frequency, which stages to run now) may
# change between the invocations of one run. A new option is run-defining unless listed here.
NOT_RUN_DEFINING = frozenset(
    {
        "output_dir",
        "report_dir",
        "eval_batch_size",
        "resume",
        "stage",
        "baseline",
        "save_steps",
        "fp16",
        "bf16",
        "distil_collapsed_teacher",  # the run that refused a collapsed teacher resumes with it
    }
)


# Named bundles of options; the CLI applies a preset first, then a config file, then flags.
PRESETS: dict[str, dict[str, Any]] = {
    "default": {},
    "tiny": {"teacher": TINY, "student": TINY, "max_length": 128, "stride": 32},
    # The README's main job: synthetic forms and tiny models, end to end in about a minute on 2 cores.
    "quickstart": {
        "data": "synthetic",
        "teacher": TINY,
        "student": TINY,
        "max_length": 128,
        "stride": 32,
        "epochs": 8.0,
        "teacher_lr": 2e-3,
        "student_lr": 2e-3,
        "batch_size": 8,
    },
}
