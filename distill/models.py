"""A model of a run: its bundle (model, tokenizer, image processor), how one loads, the defaults.

Building models (the tiny preset, hub ids, layout conversions) is distill/builders.py's job.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from transformers import (
    AutoConfig,
    AutoModelForTokenClassification,
    AutoTokenizer,
    LayoutLMv3ImageProcessor,
    LayoutLMv3Processor,
    LayoutLMv3TokenizerFast,
    PreTrainedModel,
)

from distill import atomic
from distill.errors import DistillError
from distill.labels import LabelSet
from distill.windows import WindowEncoder, takes_image

# Small enough to train in seconds on 2 CPU cores, big enough to learn synthetic forms.
TINY_HIDDEN = 64
TINY_LAYERS = 2
TINY_HEADS = 2
TINY_INTERMEDIATE = 128
TINY_BPE_VOCAB = 2000
TINY_WORDPIECE_VOCAB = 2000
TINY_IMAGE_SIZE = 112  # 7x7 patches of 16 pixels: the image path stays cheap but real


@dataclass
class Bundle:
    """A model with what turns words into its inputs."""

    model: PreTrainedModel
    tokenizer: Any
    image_processor: Any | None = None
    # True where this project added 2-D box embeddings (zero-initialised) to a text encoder: they
    # have everything to learn, which --box-lr speeds up; a pretrained LayoutLMv3's are left alone.
    fresh_boxes: bool = False

    @property
    def model_type(self) -> str:
        return self.model.config.model_type

    def encoder(self, max_length: int = 512, stride: int = 128) -> WindowEncoder:
        return WindowEncoder.for_model(
            self.model_type, self.tokenizer, self.image_processor, max_length=max_length, stride=stride
        )

    def save(self, path: str | Path) -> Path:
        """save_pretrained the model with its tokenizer (and processor), atomically."""
        with atomic.directory(path) as tmp:
            self.model.save_pretrained(tmp)
            if isinstance(self.tokenizer, LayoutLMv3TokenizerFast) and self.image_processor is not None:
                processor = LayoutLMv3Processor(
                    image_processor=self.image_processor, tokenizer=self.tokenizer
                )
                processor.save_pretrained(tmp)
            else:  # a LayoutLMv3 teacher on another tokenizer (see layoutlmv3_from_text)
                self.tokenizer.save_pretrained(tmp)
                if self.image_processor is not None:
                    self.image_processor.save_pretrained(tmp)
        return Path(path)


def label_kwargs(labels: LabelSet) -> dict[str, Any]:
    return labels.model_kwargs()


def config_labels(config: Any) -> LabelSet:
    """The labels a model config carries (its id2label)."""
    return LabelSet.from_id2label(config.id2label, "the model's id2label")


def load_tokenizer(name: str | Path) -> Any:
    """AutoTokenizer, ready for pre-split words (the window encoder passes is_split_into_words=True).

    Byte-level BPE tokenizers (RoBERTa, GPT-2 and their kin) refuse pre-split words unless built
    with add_prefix_space=True, which also gives every word the leading space it has in running
    text; their hub configs mostly say False, so they are loaded again with it.
    """
    tokenizer = AutoTokenizer.from_pretrained(name)
    if getattr(tokenizer, "add_prefix_space", None) is False:
        tokenizer = AutoTokenizer.from_pretrained(name, add_prefix_space=True)
    return tokenizer


def load_preprocessing(path: str | Path) -> tuple[str, Any, Any | None]:
    """A model directory's model type, tokenizer and (for LayoutLMv3) image processor."""
    path = Path(path)
    if not (path / "config.json").is_file():
        raise DistillError(
            "not a model directory (no config.json): run `python -m distill.train` first", path
        )
    try:
        config = AutoConfig.from_pretrained(path)
        model_type = config.model_type
        tokenizer = load_tokenizer(path)
        image_processor = (
            LayoutLMv3ImageProcessor.from_pretrained(path, apply_ocr=False) if takes_image(config) else None
        )
    except (OSError, ValueError) as err:
        raise DistillError(
            f"could not load the tokenizer or config: {str(err).splitlines()[0]}", path
        ) from err
    return model_type, tokenizer, image_processor


def load_bundle(path: str | Path) -> Bundle:
    """A fine-tuned model directory of a run (teacher/ or student/); a failure names the file."""
    path = Path(path)
    _, tokenizer, image_processor = load_preprocessing(path)
    try:
        model = AutoModelForTokenClassification.from_pretrained(path)
    except Exception as err:  # a truncated weights file raises safetensors' own error type
        weights = next(iter(sorted(path.glob("*.safetensors"))), path)
        raise DistillError(
            f"could not read the model ({err.__class__.__name__}: {str(err).splitlines()[0]})", weights
        ) from err
    return Bundle(model, tokenizer, image_processor)
