"""Layer-to-layer distillation at the token level, for students that share the teacher's tokenizer.

Where student and teacher tokenise alike (a `teacher:N` student always does; a MiniLM student of a
BERT-base teacher too), their positions line up, so more than the output can be matched:

- hidden states (TinyBERT): student hidden state m <-> teacher hidden state round(m * L_T / L_S),
  m = 0..L_S, where 0 is the embeddings' output; through a learned linear projection where the widths
  differ (scaffolding on the student while it trains, removed before it is saved). A `teacher:N`
  student is aligned instead: its layer m holds the weights of teacher layer c_m (the layers it
  copied), so its state m is matched to the state that layer produces, teacher state c_m + 1, and its
  embeddings (the teacher's own) to teacher state 0. Before training, the embeddings' and the first
  copied layer's terms are then zero; the uniform map would compare the first with a later state;
- attention distributions of the last layer (MiniLM): KL(teacher || student) per head, per query row.

Each matched layer is one term of the student's declared loss (distill/terms/declared.py: `hidden_states`,
`attentions`), with its weight and its TextBrewer-style settings (layer_T, layer_S, feature, loss,
proj), recorded so in config.toml and metrics.json (`intermediate_matches`). Hidden-state indices
count the embeddings as 0; attention indices are the attention layers' own (0-based).

The teacher's hidden states per window are needed at every step. They are computed by running the
frozen teacher in the loss (no_grad, eval mode) rather than cached: a cache of 13 hidden states of
768 floats per token is about 20 MB per 512-token window (several GB for FUNSD's training windows,
more with attention maps), while the teacher's forward pass costs about what the student's forward
and backward do for a 6-of-12-layer student, so a step costs roughly twice a plain one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from distill.config import HIDDEN_LOSSES
from distill.errors import DistillError

if TYPE_CHECKING:
    from distill.terms.inputs import TermInputs

# The student's learned maps to the teacher's width, one per matched hidden state (see PROJECTION in
# word_vectors.py for the single feature projection: the same attach / detach-before-save idea).
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


@dataclass(frozen=True)
class Shape:
    """What the layer mapping reads of a model, by its config's names: a model not built yet has one."""

    num_hidden_layers: int
    hidden_size: int

    @classmethod
    def of(cls, config: Any) -> Shape:
        return cls(layer_count(config), width(config))


def shape_of(name: str) -> Shape:
    """A model's layers and width from its configuration alone (the tiny preset's for `tiny`): what a
    run resolves of a model it has not built yet. A text encoder built into a LayoutLMv3 keeps both."""
    from transformers import AutoConfig

    from distill.config import TINY
    from distill.models import TINY_HIDDEN, TINY_LAYERS

    if name == TINY:
        return Shape(TINY_LAYERS, TINY_HIDDEN)
    try:
        return Shape.of(AutoConfig.from_pretrained(name))
    except (OSError, ValueError) as err:
        raise DistillError(
            f"could not read the model's configuration ({err.__class__.__name__}: {str(err).splitlines()[0]})",
            name,
        ) from err


def intermediate_matches(
    student_config: Any,
    teacher_config: Any,
    hidden_weight: float,
    hidden_loss: str = "mse",
    attention_weight: float = 0.0,
    copied: Sequence[int] | None = None,
) -> list[Match]:
    """The layer pairs matched (configs or Shapes of the two models); none at weight 0.

    `copied`: the teacher layers a `teacher:N` student was built from, in order (the aligned map);
    None for any other student (the uniform map).
    """
    if hidden_loss not in HIDDEN_LOSSES:
        raise DistillError(f"--hidden-loss must be one of {', '.join(HIDDEN_LOSSES)}, got {hidden_loss!r}")
    s_layers, t_layers = layer_count(student_config), layer_count(teacher_config)
    s_width, t_width = width(student_config), width(teacher_config)
    proj = ["linear", s_width, t_width] if s_width != t_width else None
    matches: list[Match] = []
    if copied is not None and len(copied) != s_layers:
        raise DistillError(f"a student of {s_layers} layers cannot have copied {len(copied)} teacher layers")
    if hidden_weight > 0:
        for m in range(s_layers + 1):
            if copied is None:
                t = int(m * t_layers / s_layers + 0.5)
            else:  # state m is the output of copied layer m - 1 (hidden states count the embeddings)
                t = 0 if m == 0 else copied[m - 1] + 1
            matches.append(Match(t, m, "hidden", f"hidden_{hidden_loss}", hidden_weight, proj))
    if attention_weight > 0:
        top = t_layers - 1 if copied is None else copied[-1]
        matches.append(Match(top, s_layers - 1, "attention", "attention_kl", attention_weight))
    return matches


def attach_layer_projections(model: torch.nn.Module, matches: Sequence[Mapping[str, Any]]) -> None:
    """One linear map per hidden term whose widths differ (its `proj`), as a submodule the Trainer optimises."""
    maps = {
        str(m["layer_S"]): torch.nn.Linear(m["proj"][1], m["proj"][2])
        for m in matches
        if m.get("feature") == "hidden" and m.get("proj") is not None
    }
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


def _mapped(settings: Mapping[str, Any]) -> None:
    if "layer_S" not in settings:
        raise ValueError("a layer-to-layer term is computed once mapped to layers (loss_terms.mapped_terms)")


def hidden_state_term(inputs: TermInputs, settings: Mapping[str, Any]) -> torch.Tensor:
    """The `hidden_states` term: student hidden state layer_S (projected where widths differ) against
    the frozen teacher's layer_T, on the real text tokens."""
    _mapped(settings)
    if inputs.hidden_states is None or inputs.teacher_hidden_states is None:
        raise ValueError("the hidden_states term needs the student's and the teacher's hidden states")
    mask = inputs.attention_mask
    tokens = mask.shape[1]
    student = inputs.hidden_states[settings["layer_S"]][:, :tokens]
    if settings.get("proj") is not None:
        student = inputs.layer_projections[str(settings["layer_S"])](student)
    teacher = inputs.teacher_hidden_states[settings["layer_T"]][:, :tokens]  # text positions, no patches
    return hidden_term(student, teacher.detach(), mask, settings["loss"])


def attention_distribution_term(inputs: TermInputs, settings: Mapping[str, Any]) -> torch.Tensor:
    """The `attentions` term: KL(teacher || student) of attention layer layer_T against layer_S."""
    _mapped(settings)
    if inputs.attentions is None or inputs.teacher_attentions is None:
        raise ValueError("the attentions term needs the student's and the teacher's attentions")
    student = inputs.attentions[settings["layer_S"]]
    teacher = inputs.teacher_attentions[settings["layer_T"]].detach()
    return attention_term(student, teacher, inputs.attention_mask)
