"""Where onnxruntime really ran each node: a CUDA row whose work fell back to the CPU is not a GPU timing.

onnxruntime places nodes the CUDA provider has no kernel for on the CPU without a word, and
copies tensors across for them. `session.disable_cpu_ep_fallback` would refuse such a session
outright, but it also refuses the shape arithmetic (Shape, Gather on shapes, Concat of dims) that
the CUDA provider deliberately leaves to the CPU in every transformer graph. So the bench
profiles one call and refuses a CUDA row (`refusal`) when, on the CPU,

- nodes other than shape arithmetic take more than CPU_SHARE_LIMIT of the profiled node time, or
- any node holds a tensor of more than one element per token of the probe batch, or a Memcpy
  moves one between host and device: per-token data such as LayoutLMv3's int64 relative-position
  tables (Gather, Where, Cast, elementwise), whatever the operator is called.

Shape arithmetic: integer outputs only, none with more elements than the probe has tokens.
"""

from __future__ import annotations

import collections
import json
import math
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CPU = "CPUExecutionProvider"
CPU_SHARE_LIMIT = 0.05  # of the profiled node time: above this the row times a CPU/GPU hybrid
MEMCPY_OPS = {"MemcpyToHost", "MemcpyFromHost"}
INTEGER_TYPES = {"int64", "int32", "int16", "int8", "uint64", "uint32", "uint16", "uint8", "bool"}


@dataclass(frozen=True)
class NodeRun:
    """One node's run in a profiled call: where, what, how long, and the tensors it produced."""

    name: str
    op: str
    provider: str
    seconds: float
    outputs: tuple[tuple[str, int], ...]  # (element type, elements) per output

    def largest(self) -> int:
        return max((n for _, n in self.outputs), default=0)

    def shape_arithmetic(self, tokens: int) -> bool:
        return all(kind in INTEGER_TYPES and n <= tokens for kind, n in self.outputs)


def profile_nodes(path: Path, providers: list[Any], feed: dict[str, Any], threads: int = 1) -> list[NodeRun]:
    """Every node of one profiled call of the model on `feed`, in a session on `providers`."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.enable_profiling = True
    with tempfile.TemporaryDirectory(prefix="docdistill-placement-") as tmp:
        options.profile_file_prefix = str(Path(tmp) / "profile")
        session = ort.InferenceSession(str(path), options, providers=providers)
        session.run(None, feed)
        events = json.loads(Path(session.end_profiling()).read_text())
    return nodes_from_profile(events)


def nodes_from_profile(events: list[dict[str, Any]]) -> list[NodeRun]:
    """The node kernel events of an onnxruntime profile (its Chrome-trace JSON)."""
    found = []
    for event in events:
        args = event.get("args", {})
        name = event.get("name", "")
        if event.get("cat") != "Node" or "provider" not in args or not name.endswith("_kernel_time"):
            continue
        outputs = tuple(
            (kind, math.prod(shape))
            for value in args.get("output_type_shape", [])
            for kind, shape in value.items()
        )
        found.append(
            NodeRun(
                name.removesuffix("_kernel_time"),
                args.get("op_name", "?"),
                args["provider"],
                float(event.get("dur", 0)) / 1e6,
                outputs,
            )
        )
    return found


def placement(nodes: list[NodeRun]) -> dict[str, dict[str, int]]:
    """{provider: {op type: nodes run}}."""
    found: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for node in nodes:
        found[node.provider][node.op] += 1
    return {provider: dict(ops) for provider, ops in found.items()}


def cpu_share(nodes: list[NodeRun], tokens: int) -> float:
    """The share of the profiled node time spent on the CPU in work other than shape arithmetic."""
    total = sum(n.seconds for n in nodes)
    work = sum(n.seconds for n in nodes if n.provider == CPU and not n.shape_arithmetic(tokens))
    return work / total if total else 0.0


def refusal(nodes: list[NodeRun], tokens: int) -> str | None:
    """Why a CUDA session's profiled call is not a GPU timing (None: it is), `tokens` the probe batch's."""
    work = [n for n in nodes if n.provider == CPU and not n.shape_arithmetic(tokens)]
    large = [n for n in nodes if (n.provider == CPU or n.op in MEMCPY_OPS) and n.largest() > tokens]
    share = cpu_share(nodes, tokens)
    reasons = []
    if share > CPU_SHARE_LIMIT:
        reasons.append(f"{share:.0%} of the profiled time on the CPU in {_ops(work)}")
    if large:
        biggest = max(large, key=NodeRun.largest)
        reasons.append(
            f"per-token tensors on or to the CPU in {_ops(large)} (up to {biggest.largest()} elements "
            f"for a {tokens}-token probe, in {biggest.name})"
        )
    return "; ".join(reasons) or None


def _ops(nodes: list[NodeRun]) -> str:
    counts = collections.Counter(n.op for n in nodes)
    return ", ".join(f"{op} x{n}" for op, n in sorted(counts.items())) or "no node"
