"""Which exported variant to serve on a CPU (and on a GPU): chosen from measurements, never assumed.

The CPU candidates are the variants that passed their gate (fp32 and fp32-optimized by parity;
int8, openvino and openvino-int8 by the accuracy gate), each timed interleaved with the others at
every shape the export timed (export/timing.py). The rule, in the manifest and export.md as it ran:

1. Batch-stable variants come first (a variant whose word labels change with the windows that share
   its batch is a serving hazard), then the others; within each group the simpler first:
   fp32, fp32-optimized, int8, openvino, openvino-int8 (onnxruntime before a second runtime, full
   precision before reduced).
2. Going down that order, a variant replaces the current pick only if it is faster than it by more
   than the noise margin at every shape timed: ties go to the simpler one, and a batch-sensitive
   variant wins only by being faster beyond the noise.
3. A reduced-precision variant (int8, bf16) must also be faster than every full-precision variant
   beyond the margin at every shape: int8 that is not faster than fp32 is not recommended.

Batch-stable: at most BATCH_STABLE_SHARE of the gate's words change label between one window at a
time and the export's batch. Rounding alone moves a few near-tie words once the padded length
changes the GEMMs' blocking: on a MiniLM student fine-tuned on FUNSD for 40 steps, 6 and 5 of its
4,682 gate words for OpenVINO bf16 and NNCF int8; onnxruntime's dynamic int8, whose activation
scale spans the whole padded batch, moved 148 (3.2%) there.
The manifest keeps the exact count either way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from export.timing import LATENCY_TIE, beyond_noise

CPU_ORDER = ("fp32", "fp32-optimized", "int8", "openvino", "openvino-int8")
BATCH_STABLE_SHARE = 0.005  # of the gate's words: rounding noise below, batch-dependent scales above
FULL_PRECISION = {"fp32", "fp32-optimized"}  # and openvino when the plugin ran it in f32


@dataclass
class Candidate:
    """A CPU variant as the choice sees it: gated or not, its medians per shape, batch invariance."""

    name: str
    gated: bool
    timings: dict[str, float] = field(default_factory=dict)  # shape -> median ms
    invariant: bool | None = (
        None  # batch-stable; None: not measured (counted as stable: no evidence against it)
    )
    reduced: bool = False
    why_not_gated: str | None = None

    @classmethod
    def from_figures(cls, name: str, figures: dict[str, Any]) -> Candidate:
        timing = figures.get("timing") or {}
        shapes = {shape: float(s["median_ms"]) for shape, s in (timing.get("shapes") or {}).items()}
        if not shapes and figures.get("latency_ms") is not None:
            shapes = {"export batch": float(figures["latency_ms"])}
        if name in FULL_PRECISION:
            gated, why = True, None  # the export refuses an fp32 graph beyond its parity tolerance
        elif "meets_gate" in figures:
            gated = bool(figures["meets_gate"])
            why = (figures.get("gate") or {}).get("why_not")
        else:  # int8 manifests from before meets_gate
            gated = bool(figures.get("meets_budget"))
            why = (figures.get("gate") or {}).get("why_not") or (
                "outside the F1 budget" if not gated else None
            )
        reduced = name not in FULL_PRECISION and not (
            name == "openvino" and figures.get("inference_precision") == "f32"
        )
        sensitivity = figures.get("batch_sensitivity") or {}
        stable = None
        if sensitivity:
            share = sensitivity.get("share_changed", 0.0 if sensitivity.get("invariant") else 1.0)
            stable = share <= BATCH_STABLE_SHARE
        return cls(name, gated, shapes, stable, reduced, why)


def faster(a: Candidate, b: Candidate, margin: float) -> bool:
    """a is faster than b beyond the margin at every shape both were timed at (and there is one)."""
    shapes = [s for s in a.timings if s in b.timings]
    return bool(shapes) and all(beyond_noise(a.timings[s], b.timings[s], margin) for s in shapes)


def choose_cpu(
    candidates: list[Candidate], margin: float = LATENCY_TIE
) -> tuple[str | None, str, list[dict]]:
    """(variant to serve, why in one sentence, one record per candidate for the manifest)."""
    rank = {name: i for i, name in enumerate(CPU_ORDER)}
    gated = [c for c in candidates if c.gated]
    gated.sort(key=lambda c: (c.invariant is False, rank.get(c.name, len(rank))))
    full = [c for c in gated if not c.reduced]
    records = {
        c.name: {"variant": c.name, "gated": c.gated, "timings_ms": c.timings, "batch_stable": c.invariant}
        for c in candidates
    }
    for c in candidates:
        if not c.gated:
            records[c.name]["note"] = f"fails its gate: {c.why_not_gated}"
    eligible = []
    for c in gated:
        slower_than_full = [f.name for f in full if not faster(c, f, margin)]
        if c.reduced and slower_than_full:
            records[c.name]["note"] = (
                f"reduced precision not faster than {', '.join(slower_than_full)} beyond the {margin:.0%} margin"
            )
            continue
        eligible.append(c)
    if not eligible:
        return None, "no CPU variant passed its gate", list(records.values())
    pick = eligible[0]
    steps = []
    for c in eligible[1:]:
        if faster(c, pick, margin):
            steps.append(f"{c.name} beats {pick.name}")
            records[pick.name]["note"] = (
                records[pick.name].get("note") or f"{c.name} is faster beyond the margin"
            )
            pick = c
        else:
            records[c.name].setdefault("note", f"not faster than {pick.name} beyond the {margin:.0%} margin")
    records[pick.name]["note"] = "recommended"
    if len(eligible) == 1:
        why = f"{pick.name}: the only {'gated ' if len(candidates) > 1 else ''}CPU variant that qualifies"
    else:
        shapes = ", ".join(pick.timings) or "no shape"
        invariant = {
            True: "batch-stable",
            False: "batch-sensitive",
            None: "batch sensitivity not measured",
        }
        why = f"{pick.name} ({invariant[pick.invariant]}): " + (
            f"{'; '.join(steps)}, each faster beyond the {margin:.0%} noise margin at every shape timed ({shapes})"
            if steps
            else f"no more complex gated variant is faster beyond the {margin:.0%} noise margin at every shape timed ({shapes})"
        )
    failed = [f"{c.name} fails its gate ({c.why_not_gated})" for c in candidates if not c.gated]
    if failed:
        why += "; " + "; ".join(failed)
    return pick.name, why, list(records.values())


def recommend(variants: dict[str, dict[str, Any]], int8_budget: float) -> dict[str, Any]:
    """The variants to serve on a CPU (measured: `choose_cpu`) and on a GPU (fp16 if it passes its gate)."""
    candidates = [Candidate.from_figures(n, variants[n]) for n in CPU_ORDER if n in variants]
    margins = [
        (variants[c.name].get("timing") or {}).get("margin")
        for c in candidates
        if variants[c.name].get("timing")
    ]
    margin = max([m for m in margins if m is not None], default=LATENCY_TIE)
    cpu, why, table = choose_cpu(candidates, margin)
    if cpu is None:
        # A fallback never serves what failed its check: with no gated variant and no full-precision
        # one exported, nothing is recommended (predict then serves the run's PyTorch student).
        failed = [
            f"{c.name} fails its gate ({c.why_not_gated or 'not gated'})" for c in candidates if not c.gated
        ]
        why = "no CPU variant to recommend: " + ("; ".join(failed) if failed else "none exported")
    if cpu in ("int8", "openvino", "openvino-int8"):
        test = variants[cpu].get("delta_f1_points")
        gate = variants[cpu].get("gate") or {}
        if test is not None:
            # The gate decides; the scored split is only reported, and said plainly when it disagrees.
            why += f"; gate {gate.get('delta_f1_points', float('nan')):+.2f} F1 points, " + (
                f"scored {test:+.2f} F1 points, within the budget of -{int8_budget}"
                if test >= -int8_budget
                else f"scored {test:+.2f} F1 points, **beyond** the budget of -{int8_budget}"
            )
    fp16 = variants.get("fp16")
    if fp16 is not None and fp16.get("meets_gate", True):  # manifests from before the fp16 gate: no verdict
        gpu, gpu_why = "fp16", "fp16 passes its gate"
    else:
        gpu = "fp32-optimized" if "fp32-optimized" in variants else ("fp32" if "fp32" in variants else None)
        if fp16 is not None:
            gpu_why = "fp16 fails its gate: " + str(
                (fp16.get("gate") or {}).get("why_not") or fp16.get("not_scored_reason")
            )
        else:
            gpu_why = "fp16 not exported" + ("" if gpu else "; no fp32 variant exported either")
    return {
        "recommended_cpu": cpu,
        "recommended_cpu_reason": why,
        "recommended_cpu_choice": {"margin": round(margin, 4), "rule": RULE, "candidates": table},
        "recommended_gpu": gpu,
        "recommended_gpu_reason": gpu_why,
    }


RULE = (
    f"gated variants only; batch-stable first (at most {BATCH_STABLE_SHARE:.1%} of words move with the batch), "
    "then simpler first (fp32, fp32-optimized, int8, openvino, "
    "openvino-int8); one replaces the pick only if faster beyond the margin at every shape timed; reduced "
    "precision must beat every full-precision variant beyond the margin"
)
