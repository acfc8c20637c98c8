"""Where onnxruntime really ran each node: a CUDA row whose compute fell back to the CPU is not a GPU timing.

onnxruntime places nodes the CUDA provider has no kernel for on the CPU without a word, and
copies tensors across for them. `session.disable_cpu_ep_fallback` would refuse such a session
outright, but it also refuses the shape arithmetic (Shape, Gather on shapes, Concat of dims) that
the CUDA provider deliberately leaves to the CPU in every transformer graph; so the bench
profiles one call instead and refuses a CUDA row only when compute (matrix products,
attention, normalisation, activations) ran on the CPU.
"""

from __future__ import annotations

import collections
import json
import tempfile
from pathlib import Path
from typing import Any

# Operators that carry the model's FLOPs or its per-token elementwise work: on the CPU in a
# CUDA session they mean the row times a CPU/GPU hybrid.
COMPUTE_OPS = {
    "MatMul",
    "Gemm",
    "MatMulInteger",
    "FusedMatMul",
    "Attention",
    "MultiHeadAttention",
    "Conv",
    "Softmax",
    "LayerNormalization",
    "SkipLayerNormalization",
    "EmbedLayerNormalization",
    "BiasGelu",
    "FastGelu",
    "Gelu",
    "Erf",
}


def node_placement(
    path: Path, providers: list[Any], feed: dict[str, Any], threads: int = 1
) -> dict[str, dict[str, int]]:
    """{provider: {op type: nodes run}} over one profiled call of the model on `feed`."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.enable_profiling = True
    with tempfile.TemporaryDirectory(prefix="docdistill-placement-") as tmp:
        options.profile_file_prefix = str(Path(tmp) / "profile")
        session = ort.InferenceSession(str(path), options, providers=providers)
        session.run(None, feed)
        events = json.loads(Path(session.end_profiling()).read_text())
    found: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for event in events:
        args = event.get("args", {})
        if (
            event.get("cat") == "Node"
            and "provider" in args
            and event.get("name", "").endswith("_kernel_time")
        ):
            found[args["provider"]][args.get("op_name", "?")] += 1
    return {provider: dict(ops) for provider, ops in found.items()}


def compute_on_cpu(placement: dict[str, dict[str, int]]) -> dict[str, int]:
    """The compute operators the CPU provider ran (empty: a true GPU run)."""
    return {op: n for op, n in placement.get("CPUExecutionProvider", {}).items() if op in COMPUTE_OPS}
