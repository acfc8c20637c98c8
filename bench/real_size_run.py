"""A run directory with the default architectures at their real sizes, random weights: for timing only.

    python -m bench.real_size_run --output-dir runs/real-size
    python -m export.onnx --run-dir runs/real-size
    pytest bench --benchmark-only --run-dir runs/real-size

Without the model hub there are no pretrained LayoutLMv3-base or DistilBERT-base weights here,
but speed does not depend on the weights' values: these models are built from the hub models'
configurations (LayoutLMv3-base: hidden 768, 12 layers, 224 px image in 16 px patches, the
hub's 514 positions; DistilBERT-base: hidden 768, 6 layers) with random weights, so every layer,
shape and FLOP is the real one. Their tokenizers are trained on the run's training words through
the real tokenizer classes, asking for the real vocabulary sizes (a small corpus yields fewer
tokens; the models keep the real embedding tables). A layout-aware student (LayoutLM built from
the DistilBERT student, as `--student-layout` trains it) is added so the bench can show its cost.

The run is flagged timing only (config.toml where TrainConfig has the field, and metrics.json),
and every report of it says "timing only, F1 not meaningful". It does not move runs/latest.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any

from transformers import (
    DistilBertConfig,
    DistilBertForTokenClassification,
    LayoutLMv3Config,
    LayoutLMv3ForTokenClassification,
    LayoutLMv3ImageProcessor,
)

from bench.catalog import TIMING_ONLY_KEY, TIMING_ONLY_NOTE, count_params
from distill import atomic
from distill.builders import train_bpe_tokenizer, train_wordpiece_tokenizer, with_layout
from distill.config import STUDENT_DEFAULT, TEACHER_DEFAULT, TrainConfig
from distill.data.run_data import load_run_data, run_labels
from distill.errors import DistillError
from distill.labels import LabelSet
from distill.models import Bundle, label_kwargs
from distill.run_dir import METRICS, dir_size

# microsoft/layoutlmv3-base's config.json where it differs from LayoutLMv3Config's defaults.
LAYOUTLMV3_BASE = {
    "max_position_embeddings": 514,
    "type_vocab_size": 1,
    "pad_token_id": 1,
    "bos_token_id": 0,
    "eos_token_id": 2,
}
LAYOUTLMV3_VOCAB = 50265  # RoBERTa's byte-level BPE
DISTILBERT_VOCAB = 30522  # bert-base-uncased's WordPiece
LAYOUT_STUDENT = "student-layout"


def real_size_teacher(words: list[str], labels: LabelSet) -> Bundle:
    tokenizer = train_bpe_tokenizer(words, LAYOUTLMV3_VOCAB)
    config = LayoutLMv3Config(vocab_size=LAYOUTLMV3_VOCAB, **LAYOUTLMV3_BASE, **label_kwargs(labels))
    processor = LayoutLMv3ImageProcessor(apply_ocr=False)  # 224 x 224, the base model's input
    return Bundle(LayoutLMv3ForTokenClassification(config), tokenizer, processor)


def real_size_student(words: list[str], labels: LabelSet) -> Bundle:
    tokenizer = train_wordpiece_tokenizer(words, DISTILBERT_VOCAB)
    config = DistilBertConfig(
        vocab_size=DISTILBERT_VOCAB, pad_token_id=tokenizer.pad_token_id, **label_kwargs(labels)
    )
    return Bundle(DistilBertForTokenClassification(config), tokenizer)


def build(output_dir: Path, data: str, layout_student: bool, seed: int) -> Path:
    import torch

    torch.manual_seed(seed)  # the same random weights every time: sizes and timings repeat
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    flag = {TIMING_ONLY_KEY: True} if TIMING_ONLY_KEY in known else {}
    config = TrainConfig(
        data=data,
        teacher=TEACHER_DEFAULT,
        student=STUDENT_DEFAULT,
        max_length=512,
        stride=128,
        seed=seed,
        output_dir=str(output_dir),
        baseline=False,  # no student-baseline is built: export.onnx would warn that it is missing
        **flag,
    ).validate()
    split = load_run_data(config)
    words = [w for form in split["train"]["tokens"] for w in form]
    output_dir.mkdir(parents=True, exist_ok=True)
    labels = run_labels(split)  # the data's labels, as a trained run would have them
    bundles = {"teacher": real_size_teacher(words, labels), "student": real_size_student(words, labels)}
    if layout_student:
        bundles[LAYOUT_STUDENT] = with_layout(bundles["student"])
    records: dict[str, Any] = {}
    for name, bundle in bundles.items():
        path = bundle.save(output_dir / name)
        records[name] = {
            "role": "teacher" if name == "teacher" else "student",
            "model_type": bundle.model_type,
            "architecture": type(bundle.model).__name__,
            "params": count_params(path),
            "size_bytes": dir_size(path),
            "weights": "random (real-size configuration)",
            "tokenizer_vocab": len(bundle.tokenizer),
        }
    # metrics.json first: a reader that sees config.toml sees a complete run.
    atomic.write_json(
        output_dir / METRICS,
        {TIMING_ONLY_KEY: True, "note": TIMING_ONLY_NOTE, "data": data, "models": records},
    )
    dataclasses.replace(config, labels=labels.option()).write(output_dir / "config.toml")
    return output_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.real_size_run",
        description="Build a timing-only run directory with LayoutLMv3-base and DistilBERT-base (random weights).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--output-dir", default="runs/real-size", help="run directory to write")
    parser.add_argument(
        "--data", default="synthetic", help="data source for the tokenizers and the end-to-end forms"
    )
    parser.add_argument("--no-layout-student", action="store_true", help="leave out the layout-aware student")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    try:
        run = build(Path(args.output_dir), args.data, not args.no_layout_student, args.seed)
    except DistillError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"run directory: {run} ({TIMING_ONLY_NOTE})")
    print(f"next: python -m export.onnx --run-dir {run}")
    print(f"then: pytest bench --benchmark-only --run-dir {run}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
