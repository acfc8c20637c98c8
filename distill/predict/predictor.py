"""One prediction API for every model and variant: words (+ boxes, + image) in, a label per word out.

A backend maps a padded batch of windows to logits; `distill` ships the PyTorch one and
`export` adds ONNX Runtime's. Training evaluation, export validation and the bench all call
`predict_word_logits`, so what is measured is what users call.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from tqdm.auto import tqdm

from distill.entities import Entity, decode_entities
from distill.windows import WindowEncoder, merge_word_logits, pad_batch, takes_image

MODEL_INPUTS = ("input_ids", "attention_mask", "bbox", "pixel_values", "token_type_ids")


class Backend(Protocol):
    """Runs a model on a batch of windows; `input_names` says which fields it takes."""

    input_names: Sequence[str]

    def __call__(self, batch: dict[str, np.ndarray]) -> np.ndarray: ...


def select_inputs(batch: dict[str, np.ndarray], names: Sequence[str]) -> dict[str, np.ndarray]:
    """The fields a model takes, in its order; token type ids are zeros when the model wants them."""
    out = {}
    for name in names:
        if name in batch:
            out[name] = batch[name]
        elif name == "token_type_ids":
            out[name] = np.zeros_like(batch["input_ids"])
        else:
            raise KeyError(f"the model needs {name!r}, which this encoder does not produce")
    return out


def model_input_names(model: torch.nn.Module) -> list[str]:
    """The window fields a PyTorch model's forward takes, in a fixed order."""
    params = inspect.signature(model.forward).parameters
    names = [n for n in MODEL_INPUTS if n in params]
    config = getattr(model, "config", None)
    if config is not None and not takes_image(config):  # e.g. a LayoutLMv3 with visual_embed=False
        names = [n for n in names if n != "pixel_values"]
    return names


class TorchBackend:
    """A PyTorch token-classification model in eval mode, on a device and in a dtype.

    `hidden`: each token's row is its logits followed by its last hidden state (the word vectors
    feature distillation matches), so the one window merge serves both.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        device: str | torch.device = "cpu",
        dtype: torch.dtype | None = None,
        hidden: bool = False,
    ):
        self.model = model.eval().to(device)
        if dtype is not None:
            self.model = self.model.to(dtype)
        self.device = torch.device(device)
        self.dtype = dtype
        self.hidden = hidden
        self.input_names = model_input_names(model)

    def tensors(self, batch: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
        """The model's inputs from a padded batch, on its device, floats in its dtype."""
        inputs = {}
        for name, value in select_inputs(batch, self.input_names).items():
            tensor = torch.from_numpy(np.ascontiguousarray(value)).to(self.device)
            if tensor.is_floating_point() and self.dtype is not None:
                tensor = tensor.to(self.dtype)
            inputs[name] = tensor
        return inputs

    @torch.inference_mode()
    def __call__(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        inputs = self.tensors(batch)
        if not self.hidden:
            return self.model(**inputs).logits.float().cpu().numpy()
        outputs = self.model(**inputs, output_hidden_states=True)
        tokens = outputs.logits.shape[1]  # LayoutLMv3 appends its image patches after the text
        rows = torch.cat([outputs.logits, outputs.hidden_states[-1][:, :tokens]], dim=-1)
        return rows.float().cpu().numpy()


SORT_QUEUE_BATCHES = 8  # with sort_by_length, windows of this many batches are sorted together


def predict_word_logits(
    encoder: WindowEncoder,
    backend: Backend,
    forms: Iterable[dict[str, Any]],
    batch_size: int = 8,
    progress: str | None = None,
    total: int | None = None,
    sort_by_length: bool = False,
) -> list[np.ndarray]:
    """Per form, a [words, labels] array of logits, each word predicted once (window-merged).

    `forms` yields dicts with `tokens` and, as the model needs them, `bboxes` and `image`
    (the columns of the data schema). `sort_by_length`: windows of several forms (SORT_QUEUE_BATCHES
    batches' worth) are batched by length, so a batch pads to less; results still come back per form,
    in order. Off, batches take windows in form order (what the export's validation and gate measure).
    """
    pad_id = encoder.tokenizer.pad_token_id or 0
    results: list[np.ndarray] = []
    pending: list[tuple[list[dict[str, np.ndarray]], int]] = []  # (windows, n_words) per form
    queue: list[dict[str, np.ndarray]] = []
    flush_at = batch_size * (SORT_QUEUE_BATCHES if sort_by_length else 1)
    # A form without words has no windows; its [0, labels] result takes the width the model gave others.
    labels: int | None = getattr(getattr(backend, "model", None), "num_labels", None)

    def flush() -> None:
        nonlocal labels
        order = list(range(len(queue)))
        if sort_by_length:
            order.sort(key=lambda i: len(queue[i]["input_ids"]))
        outputs: list[np.ndarray] = [np.zeros(0)] * len(queue)
        for i in range(0, len(order), batch_size):
            chunk = order[i : i + batch_size]
            logits = backend(pad_batch([queue[j] for j in chunk], pad_id))
            for row, j in enumerate(chunk):
                outputs[j] = logits[row, : len(queue[j]["input_ids"])]
        if outputs:
            labels = outputs[0].shape[-1]
        cursor = 0
        for windows, n_words in pending:
            chunk_logits = outputs[cursor : cursor + len(windows)]
            results.append(merge_word_logits(windows, chunk_logits, n_words, labels))
            cursor += len(windows)
        pending.clear()
        queue.clear()

    for form in tqdm(forms, desc=progress, total=total, disable=progress is None, leave=False):
        windows = encoder.encode_form(form["tokens"], form.get("bboxes"), form.get("image"))
        pending.append((windows, len(form["tokens"])))
        queue.extend(windows)
        if len(queue) >= flush_at:
            flush()
    if queue or pending:
        flush()
    return results


@dataclass(frozen=True)
class WordPrediction:
    word: str
    label: str
    score: float


@dataclass(frozen=True)
class FormPrediction:
    """A form's word labels and the entities they spell."""

    words: list[WordPrediction]
    entities: list[Entity]


class Predictor:
    """Label the words of a form with any model: `Predictor.from_dir(run/"student").predict(words)`.

    `labels`: the tag of each output index, the model's id2label (any label set).
    """

    def __init__(
        self, encoder: WindowEncoder, backend: Backend, labels: Sequence[str], batch_size: int = 8
    ) -> None:
        self.encoder = encoder
        self.backend = backend
        self.labels = list(labels)
        self.batch_size = batch_size

    @classmethod
    def from_dir(
        cls, path: str | Path, max_length: int = 512, stride: int = 128, device: str = "cpu"
    ) -> Predictor:
        from distill.models import load_bundle

        bundle = load_bundle(path)
        return cls(
            bundle.encoder(max_length, stride),
            TorchBackend(bundle.model, device),
            id2label_list(bundle.model.config),
        )

    def predict(
        self, words: Sequence[str], boxes: Sequence[Sequence[int]] | None = None, image: Any = None
    ) -> list[WordPrediction]:
        """One label and its probability per word; `boxes` (0..1000) and `image` where the model needs them."""
        (predictions,) = self.predict_many([{"tokens": list(words), "bboxes": boxes, "image": image}])
        return predictions

    def predict_many(self, forms: Iterable[dict[str, Any]]) -> list[list[WordPrediction]]:
        """`predict` for several forms in one pass: windows of different forms share a batch.

        `forms` are dicts with `tokens` and, as the model needs them, `bboxes` and `image`.
        """
        forms = list(forms)
        busy = [form for form in forms if form["tokens"]]  # a form without words has nothing to run
        logits = iter(predict_word_logits(self.encoder, self.backend, busy, self.batch_size))
        return [self._words(form["tokens"], next(logits)) if form["tokens"] else [] for form in forms]

    def _words(self, words: Sequence[str], logits: np.ndarray) -> list[WordPrediction]:
        shifted = np.exp(logits - logits.max(-1, keepdims=True))
        probs = shifted / shifted.sum(-1, keepdims=True)
        return [
            WordPrediction(word, self.labels[int(i)], float(p[i]))
            for word, p, i in zip(words, probs, probs.argmax(-1), strict=True)
        ]

    def predict_form(
        self, words: Sequence[str], boxes: Sequence[Sequence[int]] | None = None, image: Any = None
    ) -> FormPrediction:
        """Word labels and entities: BIO spans as text, label, mean word probability and enclosing box."""
        predictions = self.predict(words, boxes, image)
        entities = decode_entities(
            [p.word for p in predictions],
            [p.label for p in predictions],
            [p.score for p in predictions],
            boxes,
        )
        return FormPrediction(predictions, entities)

    def entities(
        self, words: Sequence[str], boxes: Sequence[Sequence[int]] | None = None, image: Any = None
    ) -> list[Entity]:
        return self.predict_form(words, boxes, image).entities


def id2label_list(config: Any) -> list[str]:
    """A model config's tags in output order."""
    return [config.id2label[k] for k in sorted(config.id2label, key=int)]
