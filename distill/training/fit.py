"""Train one model with the Hugging Face Trainer: checkpoints, resume, DDP and mixed precision are its own."""

from __future__ import annotations

import json
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import Trainer, TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from distill import atomic
from distill.builders import BOX_TABLES
from distill.config import TrainConfig
from distill.errors import DistillError
from distill.machine import is_main_process
from distill.models import Bundle
from distill.predict import model_input_names
from distill.run_dir import TEACHER
from distill.terms.declared import PLAIN, LossTerm, describe, is_layer_term, is_plain, uses
from distill.terms.label_losses import balanced_weights, class_weights_record, tag_counts
from distill.terms.layers import attach_layer_projections
from distill.terms.word_vectors import attach_projection
from distill.training.attention_bias import learn_attention_bias
from distill.training.early_stopping import EarlyStopping
from distill.training.trainer import DistillationTrainer, WindowCollator, WindowDataset

CHECKPOINTS = "checkpoints"
ELAPSED = "docdistill_elapsed.json"  # in each checkpoint: training seconds spent up to it, all segments


class ElapsedTime(TrainerCallback):
    """Writes, into each checkpoint, the training time spent so far over every resumed segment.

    The Trainer keeps no wall-clock total across resumes, so a resumed run would otherwise report
    only its last segment's time. Work after the last checkpoint of a killed segment is redone,
    so it is rightly not counted.
    """

    def __init__(self, before: float) -> None:
        self.before = before
        self.start = time.perf_counter()

    def total(self) -> float:
        return self.before + time.perf_counter() - self.start

    def on_save(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: object
    ) -> None:
        if state.is_world_process_zero:
            checkpoint = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            if checkpoint.is_dir():
                atomic.write_json(checkpoint / ELAPSED, {"train_seconds": self.total()})


def elapsed_before(checkpoint: Path | None) -> float:
    if checkpoint is None or not (checkpoint / ELAPSED).is_file():
        return 0.0
    return float(json.loads((checkpoint / ELAPSED).read_text())["train_seconds"])


@dataclass
class FitResult:
    train_seconds: float
    steps: int
    resumed_from: str | None
    world_size: int
    class_weights: dict[str, Any] | None = (
        None  # a balanced loss's per-tag weights (distill/terms/label_losses.py)
    )
    early_stopping: dict[str, Any] | None = None  # the validation F1 per epoch (early_stopping.py)


def last_complete_checkpoint(directory: Path) -> Path | None:
    """The newest checkpoint the Trainer finished writing (trainer_state.json is its last file)."""
    if not directory.is_dir():
        return None
    done = [p for p in directory.glob("checkpoint-*") if (p / "trainer_state.json").is_file()]
    return max(done, key=lambda p: int(p.name.rsplit("-", 1)[1]), default=None)


def clear_checkpoints(run: Path, name: str) -> None:
    """Drop a model's checkpoints once its final weights are saved (never before: resume needs them)."""
    shutil.rmtree(run / CHECKPOINTS / name, ignore_errors=True)
    if (run / CHECKPOINTS).is_dir() and not any((run / CHECKPOINTS).iterdir()):
        (run / CHECKPOINTS).rmdir()


# LayoutLM (v1) token classification still builds and runs the [CLS] pooler, whose output the
# token-level loss never reads: the same DDP failure ("Expected to have finished reduction").
# Frozen rather than removed, so a saved student keeps every weight its checkpoint format expects.
POOLER = ".pooler."


def freeze_gradient_free(model: torch.nn.Module) -> None:
    """Freeze the parameters a token-classification loss can never reach (see above).

    LayoutLMv3's relative attention biases, which upstream reads without gradient, are made to
    learn instead (attention_bias.py): DDP's fast path then finds a gradient for every one.
    """
    learn_attention_bias(model)
    for name, parameter in model.named_parameters():
        if POOLER in name:
            parameter.requires_grad_(False)


def box_parameter_names(model: torch.nn.Module) -> set[str]:
    return {name for name, _ in model.named_parameters() if any(part in name for part in BOX_TABLES)}


# A LayoutLMv3 built from a text encoder starts its spatial attention bias at zero, like its box
# embeddings: --box-lr speeds both. (Its 1-D bias is MPNet's own where it has one: not fresh.)
SPATIAL_BIAS = ("rel_pos_x_bias.weight", "rel_pos_y_bias.weight")


def fresh_layout_parameter_names(model: torch.nn.Module) -> set[str]:
    spatial = {name for name, _ in model.named_parameters() if name.endswith(SPATIAL_BIAS)}
    return box_parameter_names(model) | spatial


def freeze_box_embeddings(model: torch.nn.Module) -> None:
    boxes = box_parameter_names(model)
    for name, parameter in model.named_parameters():
        if name in boxes:
            parameter.requires_grad_(False)


def set_trainable(bundle: Bundle, config: TrainConfig, name: str) -> None:
    """Freeze what this model must not train: what no gradient reaches, and under --freeze-boxes a
    student's added box embeddings. A teacher's added boxes start at zero (layoutlmv3_from_text):
    frozen, they would stay zero and the teacher would never read its layout."""
    freeze_gradient_free(bundle.model)
    if config.freeze_boxes and bundle.fresh_boxes and name != TEACHER:
        freeze_box_embeddings(bundle.model)


def optimizer_with_box_lr(trainer: Trainer, box_lr: float) -> torch.optim.Optimizer:
    """The Trainer's AdamW (same decay rule, betas, eps), with the box embeddings (and a built
    LayoutLMv3's spatial attention bias) at `box_lr`.

    TrainingArguments has one learning rate; the Trainer keeps an optimizer it is handed and puts
    its usual linear schedule on every group, so only the groups are built here.
    """
    args = trainer.args
    decay = set(trainer.get_decay_parameter_names(trainer.model))
    boxes = fresh_layout_parameter_names(trainer.model)
    groups: dict[tuple[bool, bool], list[torch.nn.Parameter]] = {}
    for name, parameter in trainer.model.named_parameters():
        if parameter.requires_grad:
            groups.setdefault((name in boxes, name in decay), []).append(parameter)
    return torch.optim.AdamW(
        [
            {
                "params": params,
                "lr": box_lr if is_box else args.learning_rate,
                "weight_decay": args.weight_decay if decays else 0.0,
            }
            for (is_box, decays), params in groups.items()
        ],
        lr=args.learning_rate,
        betas=(args.adam_beta1, args.adam_beta2),
        eps=args.adam_epsilon,
    )


def cpu_only() -> bool:
    return not torch.cuda.is_available() and not torch.backends.mps.is_available()


def training_arguments(
    config: TrainConfig, output_dir: Path, learning_rate: float, epochs: float
) -> TrainingArguments:
    save = (
        {"save_strategy": "steps", "save_steps": config.save_steps}
        if config.save_steps > 0
        else {"save_strategy": "epoch"}
    )
    return TrainingArguments(
        output_dir=str(output_dir),
        # Told it runs on CPU, accelerate sets up DDP with gloo and allows bf16 autocast; untold,
        # each torchrun process silently trained alone on all the data, and --bf16 was refused.
        use_cpu=cpu_only(),
        num_train_epochs=epochs,
        max_steps=config.max_steps,
        learning_rate=learning_rate,
        per_device_train_batch_size=config.batch_size,
        gradient_accumulation_steps=config.grad_accum,
        warmup_ratio=config.warmup_ratio,
        weight_decay=config.weight_decay,
        lr_scheduler_type="linear",
        save_total_limit=1,
        logging_steps=10,
        report_to=[],
        seed=config.seed,
        data_seed=config.seed,
        fp16=config.fp16,
        bf16=config.bf16,
        # The Trainer's LengthGroupedSampler reads each window's input_ids length.
        group_by_length=config.group_by_length,
        dataloader_num_workers=0,
        remove_unused_columns=False,  # our windows are already exactly the model's fields
        disable_tqdm=False,
        save_safetensors=True,
        ddp_find_unused_parameters=False,
        **save,
    )


def fit(
    bundle: Bundle,
    windows: list[dict],
    config: TrainConfig,
    run: Path,
    name: str,
    learning_rate: float,
    epochs: float,
    terms: Sequence[LossTerm] = PLAIN,
    box_lr: float = 0.0,
    teacher: Bundle | None = None,
    stopper: EarlyStopping | None = None,
) -> FitResult:
    """Train `bundle.model` in place on `windows`; resume from this run's last checkpoint if any.

    `terms` is the declared loss (distill/terms/declared.py): the DistillationTrainer sums them, and when one of
    them reads the cached teacher the windows carry `teacher_logits`. Cross-entropy alone (PLAIN) is
    the plain Trainer with the model's own loss (fine-tuning, what a user does without us). A term
    with a projection (feature or layer-to-layer distillation) attaches one to the model while it
    trains; the caller removes it (detach_projection) before saving. `teacher`: the frozen teacher,
    run in the loss where a term reads its hidden states or attentions (distill/terms/layers.py).
    `box_lr` > 0 trains box embeddings this project added (`bundle.fresh_boxes`) at that rate.
    `stopper`: stop once validation F1 stops improving, and end with the best epoch's weights.
    """
    cached = uses(terms, "teacher_logits")
    if cached and windows and "teacher_logits" not in windows[0]:
        raise DistillError(f"{name} distils ({describe(terms)}) but its windows carry no teacher targets")
    live = uses(terms, "teacher_hidden_states") or uses(terms, "teacher_attentions")
    if live and teacher is None:
        raise DistillError(
            f"{name}: layer-to-layer distillation runs the teacher in the loss; none given", run
        )
    checkpoints = run / CHECKPOINTS / name
    set_trainable(bundle, config, name)
    args = training_arguments(config, checkpoints, learning_rate, epochs)
    student_inputs = model_input_names(bundle.model)
    # The fields only the teacher reads (its boxes, its page image) travel in the batch to the loss.
    teacher_inputs = [n for n in model_input_names(teacher.model) if n not in student_inputs] if live else []
    extra = ("labels", *(["teacher_logits"] if cached else []), *teacher_inputs)
    common = dict(
        model=bundle.model,
        args=args,
        train_dataset=WindowDataset(windows),
        data_collator=WindowCollator(bundle.tokenizer.pad_token_id or 0, student_inputs, extra),
    )
    weights = None
    trainer: Trainer
    if is_plain(terms):  # the model's own cross-entropy: the Trainer as users know it
        trainer = Trainer(**common)
    else:
        if uses(terms, "teacher_vectors"):
            teacher_width = windows[0]["teacher_logits"].shape[1] - bundle.model.config.num_labels
            attach_projection(bundle.model, teacher_width)
        attach_layer_projections(bundle.model, [t.settings for t in terms if t.weight and is_layer_term(t)])
        if uses(terms, "class_weights"):
            weights = balanced_weights(tag_counts(windows, bundle.model.config.num_labels))
        trainer = DistillationTrainer(
            **common,
            terms=terms,
            teacher=teacher.model if live else None,
            teacher_inputs=teacher_inputs,
            class_weights=torch.tensor(weights, dtype=torch.float32) if weights is not None else None,
        )
    if box_lr > 0 and bundle.fresh_boxes:
        trainer.optimizer = optimizer_with_box_lr(trainer, box_lr)
    resume = last_complete_checkpoint(checkpoints) if config.resume else None
    if resume is not None and is_main_process():  # metrics.json records it too, as resumed_from
        print(
            f"{name}: resuming from {resume} (step {resume.name.rsplit('-', 1)[1]})",
            file=sys.stderr,
            flush=True,
        )
    clock = ElapsedTime(elapsed_before(resume))
    trainer.add_callback(clock)
    if stopper is not None:
        trainer.add_callback(stopper)
    output = trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    seconds = clock.total()
    if stopper is not None:
        stopper.restore_best(bundle.model)
    # Every rank finishes its last checkpoint before rank 0 may delete the checkpoints.
    trainer.accelerator.wait_for_everyone()
    return FitResult(
        train_seconds=seconds,
        steps=output.global_step,
        resumed_from=str(resume) if resume else None,
        world_size=args.world_size,
        class_weights=class_weights_record(weights, bundle.model.config.id2label)
        if weights is not None
        else None,
        early_stopping=stopper.record() if stopper is not None else None,
    )
