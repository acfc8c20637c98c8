"""Train one model with the Hugging Face Trainer: checkpoints, resume, DDP and mixed precision are its own."""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from transformers import Trainer, TrainingArguments

from distill.config import TrainConfig
from distill.distillation import DistillationTrainer, WindowCollator, WindowDataset
from distill.models import Bundle
from distill.predict import model_input_names

CHECKPOINTS = "checkpoints"


@dataclass
class FitResult:
    train_seconds: float
    steps: int
    resumed_from: str | None


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
    distill: bool,
) -> FitResult:
    """Train `bundle.model` in place on `windows`; resume from this run's last checkpoint if any.

    With `distill`, windows carry `teacher_logits` and the loss is the distillation loss;
    without, the model's own cross-entropy (plain fine-tuning, what a user does without us).
    """
    checkpoints = run / CHECKPOINTS / name
    args = training_arguments(config, checkpoints, learning_rate, epochs)
    extra = ("labels", "teacher_logits") if distill else ("labels",)
    common = dict(
        model=bundle.model,
        args=args,
        train_dataset=WindowDataset(windows),
        data_collator=WindowCollator(
            bundle.tokenizer.pad_token_id or 0, model_input_names(bundle.model), extra
        ),
    )
    trainer: Trainer
    if distill:
        trainer = DistillationTrainer(**common, temperature=config.temperature, alpha=config.alpha)
    else:
        trainer = Trainer(**common)
    resume = last_complete_checkpoint(checkpoints) if config.resume else None
    start = time.perf_counter()
    output = trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    seconds = time.perf_counter() - start
    return FitResult(
        train_seconds=seconds, steps=output.global_step, resumed_from=str(resume) if resume else None
    )
