"""A teacher-labelled transfer set, TinyBERT-style: many augmented copies of the training forms.

A teacher scores the forms it was fine-tuned on almost exactly as their labels, so on them its soft
targets add little. On perturbed copies it is less sure, and its word-level targets carry what it
learnt beyond the labels. TinyBERT (Jiao et al., 2020) makes 20-30 copies of each example and
replaces each word with probability 0.4 by a plausible candidate; without that augmentation its task
distillation lost as much as having none. Each copy here changes four things:

- segment order: the form's segments (a B- word and its I- words, or a run of O words on one box)
  are shuffled, so reading order no longer gives the answer away; boxes move with their words;
- words, each with probability `replace`: a word of letters becomes one of its nearest neighbours in
  the teacher's own input word embeddings (TinyBERT's GloVe neighbours; the offline MPNet and MiniLM
  checkpoints have no masked-LM head to ask), in the word's case; a word with digits becomes a
  random one of the same shape (digits for digits: a date stays a date, an amount an amount);
  punctuation stays. `candidates = "random"` draws any training word instead (the old recipe);
- hard tags: a word whose text changed keeps no hard tag (-100: it learns the teacher's targets
  only), unless `hard_tags` keeps it: the tag belonged to the old word;
- boxes: each segment is shifted by a few units of the 0..1000 grid.

Only the training split is ever augmented: a validation, held-out or test form cannot enter. The
export's int8 gate has its own fixed perturbation (distill/perturb.py), which this recipe never moves.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import datasets
import numpy as np

from distill.labels import tag_names
from distill.perturb import JITTER, segments
from distill.windows import IGNORE_INDEX

NEIGHBOURS = 15  # candidates per word, as TinyBERT
MIN_POOL_WORD = 3  # shorter vocabulary entries are mostly word pieces, not words


@dataclass(frozen=True)
class TransferRecipe:
    """The transfer set's options (config.toml's transfer_*), as metrics.json records them."""

    copies: int
    replace: float
    candidates: str  # "neighbours" or "random"
    hard_tags: bool
    steps: str  # "grow": a copy adds steps; "same": the baseline's step count
    ocr: str = ""  # scales of the OCR views of the training pages, comma-separated ("": none)

    @property
    def active(self) -> bool:
        return self.copies > 0 or bool(self.ocr.strip())

    @classmethod
    def of(cls, config: Any) -> TransferRecipe:
        return cls(
            config.transfer_copies,
            config.transfer_replace,
            config.transfer_candidates,
            config.transfer_hard_tags,
            config.transfer_steps,
            config.transfer_ocr,
        )

    def record(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TransferSet:
    forms: datasets.Dataset  # ids `<form id>#aug<k>`, the training split's features
    hard_tags: list[list[int]]  # per copy, the tags the student learns (IGNORE_INDEX where dropped)
    changed_words: int
    words: int


def is_plain_word(word: str) -> bool:
    return word.isalpha() and len(word) >= 2


def same_shape(word: str, rng: np.random.Generator) -> str:
    """Each digit replaced by a random digit; letters and separators kept."""
    return "".join(str(rng.integers(10)) if c.isdigit() else c for c in word)


def cased_like(word: str, template: str) -> str:
    if template.isupper():
        return word.upper()
    if template[:1].isupper():
        return word.capitalize()
    return word.lower()


def vocabulary_words(tokenizer: Any) -> set[str]:
    """The whole words among a tokenizer's entries (WordPiece's ##pieces and BPE's markers removed)."""
    words = set()
    for token in tokenizer.get_vocab():
        if token.startswith("##"):
            continue
        text = token.removeprefix("Ġ").removeprefix("▁")
        if len(text) >= MIN_POOL_WORD and text.isascii() and text.isalpha():
            words.add(text.lower())
    return words


def embedding_neighbours(bundle: Any, words: Iterable[str], k: int = NEIGHBOURS) -> dict[str, list[str]]:
    """For each training word of letters (lower-cased), its k nearest words by the cosine of the
    teacher's input embeddings (a word's vector: the mean of its sub-tokens'), drawn from the training
    words and the teacher's vocabulary."""
    types = sorted({w.lower() for w in words if is_plain_word(w)})
    if not types:
        return {}
    pool = sorted(set(types) | vocabulary_words(bundle.tokenizer))
    encoder = bundle.encoder()
    ids = encoder.word_token_ids(pool, [[0, 0, 0, 0]] * len(pool))  # a layout tokenizer wants boxes
    matrix = bundle.model.get_input_embeddings().weight.detach().float().cpu().numpy()
    vectors = np.stack([matrix[i].mean(axis=0) for i in ids])
    vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    index = {w: i for i, w in enumerate(pool)}
    rows = np.array([index[w] for w in types])
    k = min(k, len(pool) - 1)
    out: dict[str, list[str]] = {}
    for start in range(0, len(rows), 512):
        chunk = rows[start : start + 512]
        sims = vectors[chunk] @ vectors.T
        sims[np.arange(len(chunk)), chunk] = -np.inf  # never the word itself
        top = np.argpartition(-sims, k, axis=1)[:, :k] if k > 0 else np.zeros((len(chunk), 0), int)
        for row, word_row, best in zip(chunk, sims, top, strict=True):
            ranked = best[np.argsort(-word_row[best])]
            out[pool[row]] = [pool[j] for j in ranked]
    return out


def _replacement(
    word: str,
    rng: np.random.Generator,
    neighbours: Mapping[str, Sequence[str]] | None,
    vocabulary: Sequence[str],
) -> str:
    if neighbours is None:  # the "random" recipe: any training word
        return vocabulary[rng.integers(len(vocabulary))]
    if any(c.isdigit() for c in word):
        return same_shape(word, rng)
    candidates = neighbours.get(word.lower()) if is_plain_word(word) else None
    if not candidates:
        return word  # punctuation, or a word with no neighbours: kept
    return cased_like(candidates[rng.integers(len(candidates))], word)


def augment_form(
    form: dict,
    rng: np.random.Generator,
    recipe: TransferRecipe,
    neighbours: Mapping[str, Sequence[str]] | None,
    vocabulary: Sequence[str],
    names: list[str],
) -> tuple[dict, list[int], int]:
    """One copy of a form, the tags its student learns, and how many of its words changed."""
    tags, boxes, words = list(form["ner_tags"]), [list(b) for b in form["bboxes"]], list(form["tokens"])
    out_words: list[str] = []
    out_boxes: list[list[int]] = []
    out_tags: list[int] = []
    learnt: list[int] = []
    changed = 0
    spans = segments(tags, boxes, names)
    for s in rng.permutation(len(spans)):
        start, end = spans[s]
        dx, dy = (int(v) for v in rng.integers(-JITTER, JITTER + 1, size=2))
        for i in range(start, end):
            word = words[i]
            if rng.random() < recipe.replace:
                word = _replacement(word, rng, neighbours, vocabulary)
            x0, y0, x1, y1 = boxes[i]
            out_words.append(word)
            out_boxes.append([min(1000, max(0, v)) for v in (x0 + dx, y0 + dy, x1 + dx, y1 + dy)])
            out_tags.append(tags[i])
            if word != words[i]:
                changed += 1
                learnt.append(tags[i] if recipe.hard_tags else IGNORE_INDEX)
            else:
                learnt.append(tags[i])
    copy = {**form, "tokens": out_words, "bboxes": out_boxes, "ner_tags": out_tags}
    return copy, learnt, changed


def transfer_set(
    train: datasets.Dataset,
    recipe: TransferRecipe,
    seed: int,
    neighbours: Mapping[str, Sequence[str]] | None = None,
) -> TransferSet:
    """`recipe.copies` augmented versions of every training form (see the module docstring).

    `neighbours`: each word's candidates (embedding_neighbours); required by the "neighbours" recipe.
    """
    if recipe.candidates == "neighbours" and neighbours is None:
        raise ValueError("the neighbours recipe needs the words' neighbours (embedding_neighbours)")
    rng = np.random.default_rng(seed)
    vocabulary = [w for form in train["tokens"] for w in form]
    names = tag_names(train, "the training split")
    candidates = neighbours if recipe.candidates == "neighbours" else None
    # Keep the page images as their encoded bytes: decoding and re-encoding them would cost seconds.
    raw = train.cast_column("image", datasets.Image(decode=False))
    rows, hard_tags, changed = [], [], 0
    for k in range(recipe.copies):
        for form in raw:
            copy, learnt, n = augment_form(form, rng, recipe, candidates, vocabulary, names)
            rows.append({**copy, "id": f"{form['id']}#aug{k}"})
            hard_tags.append(learnt)
            changed += n
    columns = {name: [row[name] for row in rows] for name in raw.column_names}
    out = datasets.Dataset.from_dict(columns, features=raw.features)
    words = sum(len(t) for t in hard_tags)
    return TransferSet(out.cast_column("image", datasets.Image(decode=True)), hard_tags, changed, words)


def with_views(transfer: TransferSet | None, views: datasets.Dataset, hard_tags: bool) -> TransferSet:
    """The transfer set and OCR views of the training pages (distill/predict/ocr_views.py).

    A view's tags come from box alignment with the gold words; like a changed word's, they are hard
    labels only with `hard_tags`: otherwise the view teaches the teacher's targets alone.
    """
    tags = [list(t) if hard_tags else [IGNORE_INDEX] * len(t) for t in views["ner_tags"]]
    words = sum(len(t) for t in tags)
    if transfer is None:
        return TransferSet(views, tags, words, words)
    forms = datasets.concatenate_datasets([transfer.forms, views.cast(transfer.forms.features)])
    return TransferSet(
        forms, transfer.hard_tags + tags, transfer.changed_words + words, transfer.words + words
    )
