"""Layer-to-layer distillation at the token level, for students that share the teacher's tokenizer.

Where student and teacher tokenise alike (a `teacher:N` student always does; a MiniLM student of a
BERT-base teacher too), their positions line up, so more than the output can be matched:

- hidden states (TinyBERT): student hidden state m <-> teacher hidden state round(m * L_T / L_S),
  m = 0..L_S, where 0 is the embeddings' output; through a learned linear projection where the widths
  differ (scaffolding on the student while it trains, removed before it is saved);
- attention distributions of the last layer (MiniLM): KL(teacher || student) per head, per query row.

Each term is declared with its weight and recorded as TextBrewer lists `intermediate_matches`
(layer_T, layer_S, feature, loss, weight, proj). Hidden-state indices count the embeddings as 0;
attention indices are the attention layers' own (0-based).

The teacher's hidden states per window are needed at every step. They are computed by running the
frozen teacher in the loss (no_grad, eval mode) rather than cached: a cache of 13 hidden states of
768 floats per token is about 20 MB per 512-token window (several GB for FUNSD's training windows,
more with attention maps), while the teacher's forward pass costs about what the student's forward
and backward do for a 6-of-12-layer student, so a step costs roughly twice a plain one.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F

from distill.errors import DistillError

HIDDEN_LOSSES = ("mse", "cosine")
# The student's learned maps to the teacher's width, one per matched hidden state (see PROJECTION in
# distillation.py for the single feature projection: the same attach / detach-before-save idea).
LAYER_PROJECTIONS = "distill_layer_projections"


@dataclass(frozen=True)
class Match:
    """One intermediate term, TextBrewer-style."""

    layer_T: int  # noqa: N815 (TextBrewer's names)
    layer_S: int  # noqa: N815
    feature: str  # "hidden" or "attention"
    loss: str  # "hidden_mse", "hidden_cosine" or "attention_kl"
    weight: float
    proj: list[Any] | None = None  # ["linear", student width, teacher width] or None

    def record(self) -> dict[str, Any]:
        return asdict(self)


def layer_count(config: Any) -> int:
    return int(getattr(config, "num_hidden_layers", None) or config.n_layers)


def width(config: Any) -> int:
    return int(getattr(config, "hidden_size", None) or config.dim)


def heads(config: Any) -> int:
    return int(getattr(config, "num_attention_heads", None) or config.n_heads)


def intermediate_matches(
    student_config: Any,
    teacher_config: Any,
    hidden_weight: float,
    hidden_loss: str = "mse",
    attention_weight: float = 0.0,
) -> list[Match]:
    """The declared terms; none at weight 0."""
    if hidden_loss not in HIDDEN_LOSSES:
        raise DistillError(f"--hidden-loss must be one of {', '.join(HIDDEN_LOSSES)}, got {hidden_loss!r}")
    s_layers, t_layers = layer_count(student_config), layer_count(teacher_config)
    s_width, t_width = width(student_config), width(teacher_config)
    proj = ["linear", s_width, t_width] if s_width != t_width else None
    matches: list[Match] = []
    if hidden_weight > 0:
        for m in range(s_layers + 1):
            t = int(m * t_layers / s_layers + 0.5)
            matches.append(Match(t, m, "hidden", f"hidden_{hidden_loss}", hidden_weight, proj))
    if attention_weight > 0:
        matches.append(Match(t_layers - 1, s_layers - 1, "attention", "attention_kl", attention_weight))
    return matches


def attach_layer_projections(model: torch.nn.Module, matches: list[Match]) -> None:
    """One linear map per hidden term whose widths differ, as a submodule the Trainer optimises."""
    maps = {str(m.layer_S): torch.nn.Linear(m.proj[1], m.proj[2]) for m in matches if m.proj is not None}
    if maps:
        model.add_module(LAYER_PROJECTIONS, torch.nn.ModuleDict(maps))


def detach_layer_projections(model: torch.nn.Module) -> None:
    if hasattr(model, LAYER_PROJECTIONS):
        delattr(model, LAYER_PROJECTIONS)


def hidden_term(student: torch.Tensor, teacher: torch.Tensor, mask: torch.Tensor, kind: str) -> torch.Tensor:
    """Distance between [B, T, D] hidden states over the real tokens (mask [B, T] of 1s and 0s)."""
    keep = mask.bool()
    s, t = student[keep].float(), teacher[keep].float()
    if s.numel() == 0:
        return student.sum() * 0.0
    if kind == "hidden_cosine":
        return (1.0 - F.cosine_similarity(s, t, dim=-1)).mean()
    return F.mse_loss(s, t)


def attention_term(student: torch.Tensor, teacher: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """KL(teacher || student) of [B, H, T, T] attention rows, averaged over heads and real query rows.

    A teacher that reads the page image attends over its patches too: where the student does not,
    the teacher's text-to-text block is taken and renormalised; where both do, the patch rows count
    (`mask` covers the text only; patches are never padding). Unequal head counts compare the heads'
    average distribution.
    """
    tokens = student.shape[-1]
    if teacher.shape[-1] > tokens:
        teacher = teacher[..., :tokens, :tokens]
        teacher = teacher / teacher.sum(-1, keepdim=True).clamp_min(1e-12)
    if tokens > mask.shape[1]:
        mask = torch.cat([mask, mask.new_ones(mask.shape[0], tokens - mask.shape[1])], dim=1)
    if student.shape[1] != teacher.shape[1]:
        student, teacher = student.mean(1, keepdim=True), teacher.mean(1, keepdim=True)
    s = student.float().clamp_min(1e-12).log()
    t = teacher.float()
    per_row = (t * (t.clamp_min(1e-12).log() - s)).sum(-1)  # [B, H, T]
    rows = mask.bool()[:, None, :].expand_as(per_row)
    return per_row[rows].mean() if rows.any() else student.sum() * 0.0


def layer_loss(
    matches: list[Match],
    student_outputs: Any,
    teacher_outputs: Any,
    attention_mask: torch.Tensor,
    projections: torch.nn.ModuleDict | None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """The weighted sum of the terms, and each term's value (for logging)."""
    tokens = attention_mask.shape[1]
    total = student_outputs.logits.new_zeros(())
    values: dict[str, float] = {}
    for m in matches:
        if m.feature == "hidden":
            s = student_outputs.hidden_states[m.layer_S][:, :tokens]
            if m.proj is not None:
                s = projections[str(m.layer_S)](s)
            t = teacher_outputs.hidden_states[m.layer_T][:, :tokens]  # text positions (no image patches)
            value = hidden_term(s, t.detach(), attention_mask, m.loss)
        else:
            s = student_outputs.attentions[m.layer_S]
            value = attention_term(s, teacher_outputs.attentions[m.layer_T].detach(), attention_mask)
        values[f"{m.feature}{m.layer_S}"] = float(value.detach())
        total = total + m.weight * value
    return total, values


def shares_tokenizer(student_tokenizer: Any, teacher_tokenizer: Any) -> bool:
    """Whether one window's input_ids mean the same tokens to both: the same vocabulary and specials."""
    if student_tokenizer is teacher_tokenizer:
        return True
    same_specials = student_tokenizer.build_inputs_with_special_tokens(
        [-1]
    ) == teacher_tokenizer.build_inputs_with_special_tokens([-1])
    return same_specials and student_tokenizer.get_vocab() == teacher_tokenizer.get_vocab()


def check_layer_matching(student: Any, teacher: Any, matches: list[Match]) -> None:
    """Refuse a layer-to-layer run that could not line up, before any training."""
    if not matches:
        return
    if not shares_tokenizer(student.tokenizer, teacher.tokenizer):
        raise DistillError(
            "layer-to-layer distillation (--hidden-weight, --attention-weight) needs a student that "
            "shares the teacher's tokenizer (e.g. --student teacher:6); this one does not: use the "
            "word-level terms (--alpha, --feature-weight) instead"
        )


def training_encoder(
    student: Any, teacher: Any | None, layer_matching: bool, max_length: int, stride: int
) -> Any:
    """The encoder of the students' training windows.

    The student's own, except where the teacher runs in the loss and reads fields the student does
    not (boxes, the page image): then the teacher's, whose windows are the same tokens (a shared
    tokenizer) with those fields added; each model takes only its own inputs from the batch.
    """
    if layer_matching and teacher is not None:
        from distill.predict import model_input_names

        if set(model_input_names(teacher.model)) - set(model_input_names(student.model)):
            return teacher.encoder(max_length, stride)
    return student.encoder(max_length, stride)


def check_tokenizers_early(config: Any) -> None:
    """Refuse layer matching between models that tokenise differently before anything is trained.

    Tokenizers load in a moment; a refusal after the teacher's fine-tuning would waste it. The tiny
    preset's tokenizers are trained per model (BPE teacher, WordPiece student), so never shared.
    """
    if not (config.hidden_weight > 0 or config.attention_weight > 0) or config.student.startswith("teacher:"):
        return
    teacher = next((d for d in config.teacher_dir.split(",") if d), config.teacher)
    message = (
        "layer-to-layer distillation (--hidden-weight, --attention-weight) needs a student that shares the "
        "teacher's tokenizer (e.g. --student teacher:6); use the word-level terms (--alpha, --feature-weight)"
    )
    if "tiny" in (teacher, config.student):
        raise DistillError(message + "; the tiny preset trains one tokenizer per model")
    from distill.models import load_tokenizer

    try:
        same = shares_tokenizer(load_tokenizer(config.student), load_tokenizer(teacher))
    except (OSError, ValueError):
        return  # not loadable here: loading the models reports it with the fuller message
    if not same:
        raise DistillError(message + f": {config.student} and {teacher} tokenise differently")
