"""Building the run's models: the offline `tiny` preset, hub ids or local directories, layout students.

The `tiny` preset builds both models from small configs with tokenizers trained on the training
words through the real classes (byte-level BPE -> LayoutLMv3TokenizerFast, WordPiece ->
DistilBertTokenizerFast) and the real LayoutLMv3Processor, so the offline path runs the same
code as the real one. A text encoder becomes a layout-aware student (LayoutLM around its weights)
or a LayoutLMv3 teacher around them.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch
from transformers import (
    AutoConfig,
    AutoModelForTokenClassification,
    AutoTokenizer,
    DistilBertConfig,
    DistilBertForTokenClassification,
    DistilBertTokenizerFast,
    LayoutLMConfig,
    LayoutLMForTokenClassification,
    LayoutLMv3Config,
    LayoutLMv3ForTokenClassification,
    LayoutLMv3ImageProcessor,
    LayoutLMv3Processor,
    LayoutLMv3TokenizerFast,
    PreTrainedModel,
)

from distill import atomic
from distill.config import BOX_INITS, TINY
from distill.errors import DistillError
from distill.labels import LabelSet
from distill.machine import is_main_process
from distill.models import (
    TINY_BPE_VOCAB,
    TINY_HEADS,
    TINY_HIDDEN,
    TINY_IMAGE_SIZE,
    TINY_INTERMEDIATE,
    TINY_LAYERS,
    TINY_WORDPIECE_VOCAB,
    Bundle,
    config_labels,
    label_kwargs,
    load_tokenizer,
)
from distill.windows import BOX_MODEL_TYPES, IMAGE_MODEL_TYPES


def _trained_files(
    trainer: Any, words: Iterable[str], vocab_size: int, specials: list[str], tmp: str
) -> list[str]:
    """Train a `tokenizers` model on `words` and save its vocabulary files into `tmp`."""
    trainer.train_from_iterator(words, vocab_size=vocab_size, min_frequency=1, special_tokens=specials)
    return trainer.save_model(tmp)


def train_bpe_tokenizer(words: Iterable[str], vocab_size: int) -> LayoutLMv3TokenizerFast:
    """Byte-level BPE (LayoutLMv3's kind), wrapped in the real LayoutLMv3TokenizerFast."""
    from tokenizers import ByteLevelBPETokenizer

    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    with tempfile.TemporaryDirectory() as tmp:
        vocab, merges = _trained_files(
            ByteLevelBPETokenizer(add_prefix_space=True), words, vocab_size, specials, tmp
        )
        return LayoutLMv3TokenizerFast(vocab_file=vocab, merges_file=merges, model_max_length=512)


def train_wordpiece_tokenizer(words: Iterable[str], vocab_size: int) -> DistilBertTokenizerFast:
    """Uncased WordPiece (DistilBERT's kind), wrapped in the real DistilBertTokenizerFast."""
    from tokenizers import BertWordPieceTokenizer

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    with tempfile.TemporaryDirectory() as tmp:
        (vocab,) = _trained_files(BertWordPieceTokenizer(lowercase=True), words, vocab_size, specials, tmp)
        return DistilBertTokenizerFast(vocab_file=vocab, do_lower_case=True, model_max_length=512)


def trained_once(train: Callable[[], Any], directory: Path | None, wait_seconds: float = 600) -> Any:
    """A tiny tokenizer, trained once per run directory and loaded from there afterwards.

    tokenizers' WordPiece trainer is not deterministic (hash-map order breaks ties: six builds on
    the same words gave six vocabularies), so every DDP rank, a resumed run and both students of a
    run must load one saved tokenizer rather than each train their own. Rank 0 trains and saves it
    atomically; the other ranks wait for its files. A file wait rather than a collective: the
    Trainer sets up the process group later, and one set up here first would confuse it.
    """
    if directory is None:
        return train()
    directory = Path(directory)
    done = directory / "tokenizer.json"
    if not done.is_file():
        if is_main_process():
            with atomic.directory(directory) as tmp:
                train().save_pretrained(tmp)
        else:
            deadline = time.monotonic() + wait_seconds
            while not done.is_file():
                if time.monotonic() > deadline:
                    raise DistillError(
                        f"rank 0 did not save the tiny tokenizer within {wait_seconds:.0f} s; "
                        "every rank must see the same run directory (a shared filesystem)",
                        directory,
                    )
                time.sleep(0.2)
    return AutoTokenizer.from_pretrained(directory)


def tiny_teacher(
    train_words: list[str], labels: LabelSet, tokenizer_dir: Path | None = None, image: bool = True
) -> Bundle:
    """`image` False: text and layout only (visual_embed=False), no image processor."""
    tokenizer = trained_once(lambda: train_bpe_tokenizer(train_words, TINY_BPE_VOCAB), tokenizer_dir)
    image_processor = LayoutLMv3ImageProcessor(
        apply_ocr=False, size={"height": TINY_IMAGE_SIZE, "width": TINY_IMAGE_SIZE}
    )
    # LayoutLMv3 needs 4 * coordinate_size + 2 * shape_size == hidden_size (defaults fit 768 only).
    coordinate = TINY_HIDDEN // 8
    config = LayoutLMv3Config(
        vocab_size=len(tokenizer),
        hidden_size=TINY_HIDDEN,
        num_hidden_layers=TINY_LAYERS,
        num_attention_heads=TINY_HEADS,
        intermediate_size=TINY_INTERMEDIATE,
        max_position_embeddings=514,  # RoBERTa-style positions start after the padding index
        coordinate_size=coordinate,
        shape_size=(TINY_HIDDEN - 4 * coordinate) // 2,
        input_size=TINY_IMAGE_SIZE,
        patch_size=16,
        visual_embed=image,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        **label_kwargs(labels),
    )
    return Bundle(LayoutLMv3ForTokenClassification(config), tokenizer, image_processor if image else None)


def tiny_student(train_words: list[str], labels: LabelSet, tokenizer_dir: Path | None = None) -> Bundle:
    tokenizer = trained_once(
        lambda: train_wordpiece_tokenizer(train_words, TINY_WORDPIECE_VOCAB), tokenizer_dir
    )
    config = DistilBertConfig(
        vocab_size=len(tokenizer),
        dim=TINY_HIDDEN,
        n_layers=TINY_LAYERS,
        n_heads=TINY_HEADS,
        hidden_dim=TINY_INTERMEDIATE,
        max_position_embeddings=512,
        pad_token_id=tokenizer.pad_token_id,
        **label_kwargs(labels),
    )
    return Bundle(DistilBertForTokenClassification(config), tokenizer)


def _from_pretrained(name: str, role: str, teacher: bool, labels: LabelSet, image: bool = True) -> Bundle:
    """A hub id or a local directory, with a classification head for our labels.

    `teacher`: a text encoder becomes a LayoutLMv3 teacher around its weights (layoutlmv3_from_text).
    `image` False: a LayoutLMv3 (hub or built) without its image path (visual_embed=False).
    """
    try:
        model_type = AutoConfig.from_pretrained(name).model_type
        extra = {"visual_embed": False} if model_type in IMAGE_MODEL_TYPES and not image else {}
        model = AutoModelForTokenClassification.from_pretrained(
            name, ignore_mismatched_sizes=True, **label_kwargs(labels), **extra
        )
        if model_type in IMAGE_MODEL_TYPES:
            processor = LayoutLMv3Processor.from_pretrained(name, apply_ocr=False)
            return Bundle(model, processor.tokenizer, processor.image_processor if image else None)
        bundle = Bundle(model, load_tokenizer(name))
        # LayoutLM (v1) and LiLT read the boxes themselves: first-class teachers, fine-tuned as they are.
        wrap = teacher and model_type not in BOX_MODEL_TYPES
        return layoutlmv3_from_text(bundle, image) if wrap else bundle
    except OSError as err:
        raise DistillError(
            f"could not load the {role} ({err.__class__.__name__}: {str(err).splitlines()[0]}). "
            "Without the model hub, pass a local model directory, or use --preset tiny / quickstart.",
            name,
        ) from err


def build_teacher(
    name: str,
    train_words: list[str],
    labels: LabelSet,
    tokenizer_dir: Path | None = None,
    as_is: bool = False,
    image: bool = True,
) -> Bundle:
    """`tokenizer_dir`: where the tiny preset keeps its trained tokenizer (see trained_once).

    `as_is`: a text encoder is fine-tuned as itself (a token classifier on words alone, like a
    student) rather than wrapped into a LayoutLMv3; the word-level logit cache serves either.
    `image` False: a LayoutLMv3 teacher reads text and layout only (no patch tokens).
    """
    if name == TINY:
        if as_is:
            return tiny_student(train_words, labels, tokenizer_dir)
        return tiny_teacher(train_words, labels, tokenizer_dir, image)
    return _from_pretrained(name, "teacher", teacher=not as_is, labels=labels, image=image)


def build_student(
    name: str,
    train_words: list[str],
    labels: LabelSet,
    layout: bool = False,
    tokenizer_dir: Path | None = None,
    box_init: str = "zero",
) -> Bundle:
    """`tokenizer_dir`: where the tiny preset keeps its trained tokenizer (see trained_once)."""
    if name == TINY:
        bundle = tiny_student(train_words, labels, tokenizer_dir)
    else:
        bundle = _from_pretrained(name, "student", teacher=False, labels=labels)
    return with_layout(bundle, box_init) if layout else bundle


# DistilBERT parameter names -> BERT/LayoutLM ones (per layer, after "transformer.layer.N.").
_DISTILBERT_LAYER_MAP = {
    "attention.q_lin": "attention.self.query",
    "attention.k_lin": "attention.self.key",
    "attention.v_lin": "attention.self.value",
    "attention.out_lin": "attention.output.dense",
    "sa_layer_norm": "attention.output.LayerNorm",
    "ffn.lin1": "intermediate.dense",
    "ffn.lin2": "output.dense",
    "output_layer_norm": "output.LayerNorm",
}


# MPNet parameter names -> BERT/LayoutLM ones (per layer, after "encoder.layer.N."); the rest match.
_MPNET_LAYER_MAP = {
    "attention.attn.q": "attention.self.query",
    "attention.attn.k": "attention.self.key",
    "attention.attn.v": "attention.self.value",
    "attention.attn.o": "attention.output.dense",
    "attention.LayerNorm": "attention.output.LayerNorm",
}


MPNET_BIAS = "mpnet.encoder.relative_attention_bias.weight"


def _mpnet_key(key: str) -> str:
    """An MPNet weight's name as BERT spells it (mpnet.encoder.layer.3.attention.attn.q.weight ->
    mpnet.encoder.layer.3.attention.self.query.weight)."""
    for theirs, ours in _MPNET_LAYER_MAP.items():
        key = key.replace(f".{theirs}.", f".{ours}.")
    return key


def position_offset(model: PreTrainedModel) -> int:
    """The first row of the text model's 1-D position table that a token ever uses.

    RoBERTa-family embeddings (RoBERTa, XLM-R, CamemBERT, ...) number positions from
    padding_idx + 1 and keep `padding_idx` on the embeddings module; BERT, DistilBERT and
    LayoutLM (v1) number them from 0.
    """
    if model.config.model_type == "distilbert":
        return 0
    embeddings = getattr(model.base_model, "embeddings", None)  # absent: _layoutlm_config says why
    padding_idx = getattr(embeddings, "padding_idx", None)
    return padding_idx + 1 if padding_idx is not None else 0


def _layoutlm_config(text_config: Any, offset: int = 0) -> LayoutLMConfig:
    """LayoutLM (v1) sizes for a text encoder; `offset`: see position_offset (LayoutLM counts from 0)."""
    if text_config.model_type == "distilbert":
        sizes = dict(
            hidden_size=text_config.dim,
            num_hidden_layers=text_config.n_layers,
            num_attention_heads=text_config.n_heads,
            intermediate_size=text_config.hidden_dim,
            hidden_act=text_config.activation,
            hidden_dropout_prob=text_config.dropout,
            attention_probs_dropout_prob=text_config.attention_dropout,
            layer_norm_eps=1e-12,
        )
    elif hasattr(text_config, "hidden_size") and hasattr(text_config, "intermediate_size"):
        sizes = {
            k: getattr(text_config, k)
            for k in (
                "hidden_size",
                "num_hidden_layers",
                "num_attention_heads",
                "intermediate_size",
                "hidden_act",
                "hidden_dropout_prob",
                "attention_probs_dropout_prob",
                "layer_norm_eps",
            )
        }
    else:
        raise DistillError(
            f"no layout-aware form of a {text_config.model_type!r} student: use a BERT-family or DistilBERT one"
        )
    return LayoutLMConfig(
        vocab_size=text_config.vocab_size,
        max_position_embeddings=text_config.max_position_embeddings - offset,
        max_2d_position_embeddings=1024,
        type_vocab_size=getattr(text_config, "type_vocab_size", 2),
        pad_token_id=text_config.pad_token_id,
        **sizes,
        **label_kwargs(config_labels(text_config)),
    )


def _text_to_layoutlm_state(model: PreTrainedModel) -> dict[str, torch.Tensor]:
    """The text model's weights under LayoutLM's names (BERT's with another prefix; DistilBERT's mapped)."""
    state = model.state_dict()
    model_type = model.config.model_type
    out: dict[str, torch.Tensor] = {}
    if model_type == "distilbert":
        for key, value in state.items():
            if key.startswith("distilbert.embeddings."):
                out["layoutlm.embeddings." + key.removeprefix("distilbert.embeddings.")] = value
            elif key.startswith("distilbert.transformer.layer."):
                rest = key.removeprefix("distilbert.transformer.layer.")
                layer, name = rest.split(".", 1)
                module, param = name.rsplit(".", 1)
                out[f"layoutlm.encoder.layer.{layer}.{_DISTILBERT_LAYER_MAP[module]}.{param}"] = value
            elif key.startswith("classifier."):
                out[key] = value
    else:
        prefix = model.base_model_prefix + "."
        for key, value in state.items():
            if key == MPNET_BIAS:  # no LayoutLM counterpart; layoutlmv3_from_text takes it itself
                continue
            if model_type == "mpnet":
                key = _mpnet_key(key)
            if key.startswith(prefix):
                out["layoutlm." + key.removeprefix(prefix)] = value
            elif key.startswith("classifier."):
                out[key] = value
    # LayoutLM's position 0 is the text model's row `offset` (2 for RoBERTa: after the padding index).
    positions = "layoutlm.embeddings.position_embeddings.weight"
    out[positions] = out[positions][position_offset(model) :]
    return out


# The 2-D box embedding tables, by the same names in LayoutLM and LayoutLMv3.
BOX_TABLES = (
    "x_position_embeddings",
    "y_position_embeddings",
    "h_position_embeddings",
    "w_position_embeddings",
)


def box_tables(embeddings: torch.nn.Module) -> list[torch.nn.Embedding]:
    return [getattr(embeddings, name) for name in BOX_TABLES]


def sinusoid_box_table(rows: int, dim: int, row_norm: float, generator: torch.Generator) -> torch.Tensor:
    """Smooth, distinct embeddings of coordinates 0..rows-1 for a 2-D box table.

    Transformer sinusoids (nearby coordinates get nearby rows, so rarely seen coordinates borrow
    from their neighbours), turned by a random rotation per table so that x, y, h and w do not
    collide in the sum LayoutLM takes, scaled to `row_norm`.
    """
    position = torch.arange(rows, dtype=torch.float32)[:, None]
    frequency = 1.0 / 10000 ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim)
    table = torch.zeros(rows, dim)
    table[:, 0::2] = torch.sin(position * frequency)
    table[:, 1::2] = torch.cos(position * frequency)[:, : dim // 2]
    rotation, _ = torch.linalg.qr(torch.randn(dim, dim, generator=generator))
    table = table @ rotation
    return table * (row_norm / table.norm(dim=1, keepdim=True))


def with_layout(text: Bundle, box_init: str = "zero") -> Bundle:
    """The same student with each word's box: LayoutLM (v1) initialised from the text weights.

    LayoutLM is BERT plus 2-D position embeddings of the word boxes; it never sees the image.
    `box_init` sets those new embeddings: "zero" (the layout student first computes exactly what
    the text student does, and learns how much layout to use), "sinusoid" (smooth and distinct
    from the start, see sinusoid_box_table; the six rows a token looks up sum to about the norm of
    one of the encoder's 1-D position embeddings), or "random" (LayoutLM's own initialiser).
    """
    if box_init not in BOX_INITS:
        raise DistillError(f"unknown box initialisation {box_init!r}; choose one of {', '.join(BOX_INITS)}")
    if text.model.config.model_type == "mpnet":
        raise DistillError(
            "no layout-aware form of an MPNet student: LayoutLM has no relative attention bias, so "
            "MPNet's would be lost; use a BERT-family student, or --student teacher:N from an MPNet teacher"
        )
    config = _layoutlm_config(text.model.config, position_offset(text.model))
    model = LayoutLMForTokenClassification(config)
    missing, unexpected = model.load_state_dict(_text_to_layoutlm_state(text.model), strict=False)
    if unexpected:
        raise DistillError(f"could not map the student's weights to LayoutLM: unexpected {unexpected[:3]}")
    embeddings = model.layoutlm.embeddings
    with torch.no_grad():
        generator = torch.Generator().manual_seed(0)
        # x0, y0, x1, y1, h, w: six rows per token
        row_norm = float(embeddings.position_embeddings.weight.norm(dim=1).mean()) / 6**0.5
        for table in box_tables(embeddings):
            if box_init == "zero":
                table.weight.zero_()
            elif box_init == "sinusoid":
                rows, dim = table.weight.shape
                table.weight.copy_(sinusoid_box_table(rows, dim, row_norm, generator))
        if text.model.config.model_type == "distilbert":  # DistilBERT has no segment embeddings
            embeddings.token_type_embeddings.weight.zero_()
    model.layout_init_missing = [k for k in missing if "position_embeddings" not in k and "pooler" not in k]
    return Bundle(model, text.tokenizer, fresh_boxes=True)


def _layoutlmv3_config(
    text_config: Any, offset: int = 0, image_size: int = 224, image: bool = True
) -> LayoutLMv3Config:
    base = _layoutlm_config(text_config, offset)  # BERT-family sizes, whatever the text model's naming
    hidden = base.hidden_size
    coordinate = hidden // 6  # 4 * coordinate + 2 * shape == hidden, as in the base model (128, 128 for 768)
    shape = (hidden - 4 * coordinate) // 2
    return LayoutLMv3Config(
        vocab_size=base.vocab_size,
        hidden_size=hidden,
        num_hidden_layers=base.num_hidden_layers,
        num_attention_heads=base.num_attention_heads,
        intermediate_size=base.intermediate_size,
        hidden_act=base.hidden_act,
        hidden_dropout_prob=base.hidden_dropout_prob,
        attention_probs_dropout_prob=base.attention_probs_dropout_prob,
        layer_norm_eps=base.layer_norm_eps,
        max_position_embeddings=base.max_position_embeddings + 2,  # positions start after the padding index
        type_vocab_size=1,
        pad_token_id=base.pad_token_id,
        coordinate_size=coordinate,
        shape_size=shape,
        input_size=image_size,
        patch_size=16,
        visual_embed=image,
        **label_kwargs(config_labels(text_config)),
    )


def layoutlmv3_from_text(text: Bundle, image: bool = True) -> Bundle:
    """A LayoutLMv3 teacher (text + layout + image) whose text path starts from a BERT-family encoder.

    Without the hub's pretrained LayoutLMv3, this is the strongest teacher we can build offline:
    the text encoder's pretrained weights, plus LayoutLMv3's 2-D embeddings and its 1-D and
    spatial attention biases (zero at start, so it starts as the text model; they learn during
    training, see attention_bias.py) and its image patches (learnt from FUNSD).
    The tokenizer stays the text model's; the image goes through LayoutLMv3's image processor.
    `image` False: no image path at all (visual_embed=False): text and layout only.
    """
    config = _layoutlmv3_config(text.model.config, position_offset(text.model), image=image)
    model = LayoutLMv3ForTokenClassification(config)
    state = {
        k.replace("layoutlm.", "layoutlmv3.", 1): v for k, v in _text_to_layoutlm_state(text.model).items()
    }
    ours = model.state_dict()
    positions = state.pop("layoutlmv3.embeddings.position_embeddings.weight")
    # LayoutLMv3 has one segment type: BERT's type 0 (what every token of ours is) where it has one.
    segments = state.pop("layoutlmv3.embeddings.token_type_embeddings.weight", None)
    # LayoutLMv3 numbers positions from padding_idx + 1 (RoBERTa style); BERT from 0.
    shifted = ours["layoutlmv3.embeddings.position_embeddings.weight"].clone()
    start = config.pad_token_id + 1
    count = min(len(positions), len(shifted) - start)
    shifted[start : start + count] = positions[:count]
    if position_offset(text.model) == start:  # RoBERTa-style already (MPNet): its padding rows too
        shifted[:start] = text.model.base_model.embeddings.position_embeddings.weight[:start].detach()
    state["layoutlmv3.embeddings.position_embeddings.weight"] = shifted
    dropped = [k for k, v in state.items() if k not in ours or ours[k].shape != v.shape]
    if dropped:  # a silent drop once left an MPNet-built teacher with random attention weights
        raise DistillError(f"could not map the text encoder's weights to LayoutLMv3: {dropped[:3]}")
    model.load_state_dict(state, strict=False)
    with torch.no_grad():
        emb = model.layoutlmv3.embeddings
        for table in box_tables(emb):
            table.weight.zero_()
        emb.token_type_embeddings.weight.zero_()
        if segments is not None:
            emb.token_type_embeddings.weight[0] = segments[0]
        for bias in (
            model.layoutlmv3.encoder.rel_pos_bias,
            model.layoutlmv3.encoder.rel_pos_x_bias,
            model.layoutlmv3.encoder.rel_pos_y_bias,
        ):
            bias.weight.zero_()
        if text.model.config.model_type == "mpnet":
            # MPNet's relative position bias: the same buckets (T5's, 32 of them up to distance 128)
            # as LayoutLMv3's 1-D bias, which is divided by sqrt(head size) where MPNet's is not.
            mpnet = text.model.state_dict()[MPNET_BIAS]  # [buckets, heads]
            head_size = config.hidden_size // config.num_attention_heads
            model.layoutlmv3.encoder.rel_pos_bias.weight.copy_(mpnet.t() * head_size**0.5)
    image_processor = LayoutLMv3ImageProcessor(apply_ocr=False) if image else None
    return Bundle(model, text.tokenizer, image_processor, fresh_boxes=True)
