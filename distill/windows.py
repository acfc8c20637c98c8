"""Encode a form (words, boxes, image) into overlapping windows, and merge window outputs back to words.

This is the one place where tokens become words again: training evaluation, export validation
and the bench all merge through `merge_word_logits`, so every reported F1 is computed the same way.

Why windows are cut here and not by the tokenizer's own `return_overflowing_tokens`: the
tokenizer cuts at token boundaries, so a word can start in one window and continue in the next,
where its continuation would look like a first sub-token. Cutting at word boundaries keeps every
word whole inside each window that holds it, so every word has exactly one first sub-token per
window and none is ever dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

IGNORE_INDEX = -100

BLANK_PAGE = Image.new("RGB", (224, 224), "white")

# Model types whose forward takes word boxes (bbox) and, for the first, the page image.
IMAGE_MODEL_TYPES = {"layoutlmv3"}
BOX_MODEL_TYPES = {"layoutlmv3", "layoutlm", "layoutlmv2", "lilt"}


def takes_image(config: Any) -> bool:
    """Whether a model of this config reads the page image (a LayoutLMv3 may be built without it)."""
    return config.model_type in IMAGE_MODEL_TYPES and getattr(config, "visual_embed", True)


@dataclass(frozen=True)
class WindowSpan:
    """Words [start, end) of a form."""

    start: int
    end: int


def plan_windows(token_counts: Sequence[int], capacity: int, stride: int) -> list[WindowSpan]:
    """Cut a form into windows of whole words holding at most `capacity` sub-tokens each.

    Consecutive windows share up to `stride` tokens of context (whole words, and at least the last
    word where it fits), so a word near one window's edge sits nearer the middle of the next one;
    with `stride` 0 they share nothing.
    Every window reaches past the previous one's end, so none lies inside another, and starts
    and ends both strictly increase. A form without words has no windows.
    """
    if capacity < 1:
        raise ValueError(f"window capacity must be positive, got {capacity}")
    if stride < 0:
        raise ValueError(f"stride must not be negative, got {stride}")
    offsets = np.concatenate([[0], np.cumsum(token_counts)]).astype(int)
    n = len(token_counts)
    spans: list[WindowSpan] = []
    start = 0
    while start < n:
        end = start
        while end < n and offsets[end + 1] - offsets[start] <= capacity:
            end += 1
        end = max(end, start + 1)  # a single over-long word still gets its window
        spans.append(WindowSpan(start, end))
        if end >= n:
            break
        start = _next_start(offsets, start, end, capacity, stride)
    return spans


def _next_start(offsets: np.ndarray, start: int, end: int, capacity: int, stride: int) -> int:
    """Where the window after [start, end) begins: as early as the overlap allows, never at `start`.

    The next window must still take word `end` (else it would lie inside this one), so it cannot
    start earlier than the first word from which word `end` fits; a positive stride shares at
    least this window's last word (the one nearest its edge) whenever that fits.
    """
    fits = start + 1  # the earliest start from which words up to `end` fit within capacity
    while fits < end and offsets[end + 1] - offsets[fits] > capacity:
        fits += 1
    if stride == 0:
        return end
    nxt = max(fits, end - 1)
    while nxt - 1 >= fits and offsets[end] - offsets[nxt - 1] <= stride:
        nxt -= 1
    return nxt


class WindowEncoder:
    """Turns forms into model-ready windows for one tokenizer (and image processor, for LayoutLMv3)."""

    def __init__(
        self,
        tokenizer: Any,
        *,
        max_length: int = 512,
        stride: int = 128,
        use_boxes: bool = False,
        image_processor: Any | None = None,
    ) -> None:
        if stride >= max_length:
            raise ValueError(f"stride ({stride}) must be smaller than max length ({max_length})")
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.stride = stride
        self.use_boxes = use_boxes or image_processor is not None
        self.image_processor = image_processor
        # Where the special tokens go around a single sequence: learnt from the tokenizer itself.
        marked = tokenizer.build_inputs_with_special_tokens([-1])
        cut = marked.index(-1)
        self.prefix_ids: list[int] = list(marked[:cut])
        self.suffix_ids: list[int] = list(marked[cut + 1 :])
        self.capacity = max_length - len(self.prefix_ids) - len(self.suffix_ids)
        # LayoutLMv3's tokenizer requires boxes with the words; others take pre-split words.
        self._wants_boxes_in_call = "boxes" in tokenizer.__call__.__code__.co_varnames

    @classmethod
    def for_model(
        cls, model_type: str, tokenizer: Any, image_processor: Any | None = None, **kw: Any
    ) -> WindowEncoder:
        """The encoder a model of this type needs: boxes for layout models, the image for LayoutLMv3."""
        return cls(
            tokenizer,
            use_boxes=model_type in BOX_MODEL_TYPES,
            image_processor=image_processor if model_type in IMAGE_MODEL_TYPES else None,
            **kw,
        )

    def word_token_ids(self, words: Sequence[str], boxes: Sequence[Sequence[int]] | None) -> list[np.ndarray]:
        """Sub-token ids of each word (int64 arrays), without special tokens; never empty, never over capacity."""
        ids, lengths = self.token_table(words, boxes)
        return np.split(ids, np.cumsum(lengths)[:-1]) if len(lengths) else []

    def token_table(
        self, words: Sequence[str], boxes: Sequence[Sequence[int]] | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(every word's sub-token ids end to end, each word's count): the words' ids in one array, so a
        window of whole words is one slice of it. No word is empty (an erased word gets [UNK]) or longer
        than a window's capacity. Built with numpy: no Python work per word on the prediction path."""
        if not words:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        # verbose=False: the tokenizer sees the whole form, longer than the model takes, and would warn
        # ("Token indices sequence length is longer than the specified maximum"); the windows cut it.
        if self._wants_boxes_in_call:
            boxes = boxes if boxes is not None else [[0, 0, 0, 0]] * len(words)
            enc = self.tokenizer(
                list(words), boxes=[list(b) for b in boxes], add_special_tokens=False, verbose=False
            )
        else:
            enc = self.tokenizer(
                list(words), is_split_into_words=True, add_special_tokens=False, verbose=False
            )
        ids = np.asarray(enc["input_ids"], dtype=np.int64)
        owner = np.asarray(enc.word_ids(), dtype=np.float64)  # None (special tokens) -> nan
        keep = ~np.isnan(owner)
        ids, owner = ids[keep], owner[keep].astype(np.int64)
        counts = np.bincount(owner, minlength=len(words))
        lengths = np.clip(counts, 1, self.capacity)
        if np.array_equal(lengths, counts):  # the usual case: every word whole and present
            return ids, lengths
        # Tokens come in word order: take each word's first `lengths` tokens; an erased word's slot is [UNK],
        # so it still has a position to be predicted at.
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        within = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        source = np.repeat(starts, lengths) + within
        erased = np.repeat(counts == 0, lengths)
        table = np.full(len(source), self.tokenizer.unk_token_id, dtype=np.int64)
        table[~erased] = ids[source[~erased]]
        return table, lengths

    def encode_form(
        self,
        words: Sequence[str],
        boxes: Sequence[Sequence[int]] | None = None,
        image: Any | None = None,
        tags: Sequence[int] | None = None,
        word_targets: np.ndarray | None = None,
    ) -> list[dict[str, np.ndarray]]:
        """All windows of one form.

        Each window has input_ids, attention_mask, word_index (the form's word index at each word's
        first sub-token, -1 elsewhere), and where they apply: bbox, pixel_values, labels (tag on
        first sub-tokens, -100 elsewhere), teacher_logits (word_targets[word] at first sub-tokens).
        """
        if self.use_boxes and boxes is None:
            raise ValueError("this model needs a box for every word")
        if boxes is not None and len(boxes) != len(words):
            raise ValueError(f"{len(words)} words but {len(boxes)} boxes")
        if not words:  # nothing to predict or learn: no windows (training skips the form)
            return []
        pixel_values = None
        if self.image_processor is not None:
            if image is None:  # a form without a scan (user data, CORD-style text): a blank page
                image = BLANK_PAGE
            pixel_values = self.image_processor(images=image.convert("RGB"), return_tensors="np")[
                "pixel_values"
            ][0]
        table = self.token_table(words, boxes)
        spans = plan_windows(table[1], self.capacity, self.stride)
        box_array = np.asarray(boxes, dtype=np.int64).reshape(-1, 4) if boxes is not None else None
        offsets = np.concatenate([[0], np.cumsum(table[1])])
        return [
            self._window(span, table, offsets, box_array, pixel_values, tags, word_targets) for span in spans
        ]

    def _window(
        self,
        span: WindowSpan,
        table: tuple[np.ndarray, np.ndarray],
        offsets: np.ndarray,
        boxes: np.ndarray | None,
        pixel_values: np.ndarray | None,
        tags: Sequence[int] | None,
        word_targets: np.ndarray | None,
    ) -> dict[str, np.ndarray]:
        # One slice of the token table and a few numpy calls: no Python work per word on the hot path.
        flat, lengths = table
        prefix, suffix = len(self.prefix_ids), len(self.suffix_ids)
        ids = np.concatenate(
            [
                np.asarray(self.prefix_ids, dtype=np.int64),
                flat[offsets[span.start] : offsets[span.end]],
                np.asarray(self.suffix_ids, dtype=np.int64),
            ]
        )
        body = np.repeat(np.arange(span.start, span.end, dtype=np.int64), lengths[span.start : span.end])
        word_arr = np.concatenate(
            [np.full(prefix, -1, dtype=np.int64), body, np.full(suffix, -1, dtype=np.int64)]
        )
        first_arr = np.zeros(len(ids), dtype=bool)
        first_arr[prefix + offsets[span.start : span.end] - offsets[span.start]] = True
        out: dict[str, np.ndarray] = {
            "input_ids": ids,
            "attention_mask": np.ones(len(ids), dtype=np.int64),
            "word_index": np.where(first_arr, word_arr, -1),
        }
        in_word = word_arr >= 0
        if self.use_boxes and boxes is not None:
            bbox = np.zeros((len(ids), 4), dtype=np.int64)
            bbox[in_word] = boxes[word_arr[in_word]]
            out["bbox"] = bbox
        if pixel_values is not None:
            out["pixel_values"] = pixel_values
        if tags is not None:
            tag_arr = np.asarray(tags, dtype=np.int64)
            out["labels"] = np.where(first_arr, tag_arr[np.maximum(word_arr, 0)], IGNORE_INDEX)
        if word_targets is not None:
            targets = np.zeros((len(ids), word_targets.shape[1]), dtype=np.float32)
            targets[first_arr] = word_targets[word_arr[first_arr]]
            out["teacher_logits"] = targets
        return out


PAD_VALUES = {
    "attention_mask": 0,
    "word_index": -1,
    "labels": IGNORE_INDEX,
    "bbox": 0,
    "teacher_logits": 0.0,
    "token_type_ids": 0,
}


def pad_batch(
    windows: Sequence[dict[str, np.ndarray]], pad_token_id: int, pad_to: int | None = None
) -> dict[str, np.ndarray]:
    """Stack windows into a batch, padding every per-token field to the longest (or `pad_to`)."""
    length = max(len(w["input_ids"]) for w in windows)
    length = max(length, pad_to or 0)
    batch: dict[str, np.ndarray] = {}
    for key in windows[0]:
        if key == "pixel_values":  # one image per window, not per token
            batch[key] = np.stack([w[key] for w in windows])
            continue
        pad = pad_token_id if key == "input_ids" else PAD_VALUES[key]
        rows = []
        for w in windows:
            value = w[key]
            widths = [(0, length - len(value))] + [(0, 0)] * (value.ndim - 1)
            rows.append(np.pad(value, widths, constant_values=pad))
        batch[key] = np.stack(rows)
    return batch


def merge_word_logits(
    windows: Sequence[dict[str, np.ndarray]],
    logits: Sequence[np.ndarray],
    n_words: int,
    num_labels: int | None = None,
) -> np.ndarray:
    """One row of logits per word: from the window where the word sits furthest from an edge.

    `logits[i]` is window i's [tokens, labels] output (padding beyond the window is ignored).
    Distance counts sub-tokens to the nearer end of the window's content, so a word in an
    overlap is taken from the window that saw the most context on both sides of it.
    A form without words has no windows: `num_labels` then gives its [0, labels] result a width.
    """
    if n_words == 0:
        width = logits[0].shape[-1] if len(logits) else (num_labels or 0)
        return np.zeros((0, width), dtype=np.float32)
    best = np.full(n_words, -1, dtype=np.int64)
    merged = np.zeros((n_words, logits[0].shape[-1]), dtype=np.float32)
    for window, window_logits in zip(windows, logits, strict=True):
        word_index = window["word_index"]
        positions = np.nonzero(word_index >= 0)[0]
        if len(positions) == 0:
            continue
        content = np.nonzero(window["attention_mask"])[0]
        lo, hi = content[0], content[-1]  # the window's outer (special) tokens: the same for every window
        margin = np.minimum(positions - lo, hi - positions)
        words = word_index[positions]
        better = margin > best[words]
        merged[words[better]] = window_logits[positions[better]]
        best[words[better]] = margin[better]
    missing = np.nonzero(best < 0)[0]
    if len(missing):
        raise RuntimeError(f"{len(missing)} words were not in any window (first: {missing[0]})")
    return merged
