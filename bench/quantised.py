"""What an ONNX model really runs in int8: read from its graph, not from the recipe's name.

The share of FLOPs a row runs in int8 decides which limit it is held against (bench/report_tables.py, limit_mix),
and recipes differ in what they quantise: optimum's (every MatMul of the unfused graph,
`MatMulConstBOnly` off) runs attention's two activation products Q.K^T and A.V in int8 too; the
fused graph's QAttention quantises the QKV projection but keeps those products in fp32; the
keep-sensitive rung leaves some projections in fp32. So the graph is read:

- weight GEMMs (one input a constant weight [k, n]) count by weight size k*n, the share of
  per-token multiply-adds they carry; int8 when the node is an integer kernel (MatMulInteger,
  DynamicQuantizeMatMul, QLinearMatMul, QAttention, QGemm) or a MatMul fed by DequantizeLinear
  (static QDQ, which onnxruntime fuses into an integer kernel);
- activation products (neither input constant) count one each; fused attention ops hold two,
  always in fp32 (QAttention dequantises before Q.K^T).

An OpenVINO IR (NNCF's int8) is read the same way (`ir_share`): a MatMul is int8 when both its inputs
come through a FakeQuantize or a weight stored in int8 (Constant i8 -> Convert -> Multiply by its
scale, NNCF's compressed weight), which the CPU plugin fuses into an integer kernel;
ScaledDotProductAttention holds two activation products in floating point.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import onnx

INT8_KERNELS = {"MatMulInteger", "DynamicQuantizeMatMul", "QLinearMatMul", "QAttention", "QGemm"}
FP32_GEMMS = {"MatMul", "Gemm", "FusedMatMul"}
FUSED_ATTENTION = {"Attention", "QAttention", "MultiHeadAttention"}


@dataclass(frozen=True)
class QuantisedShare:
    """Fractions in int8: of the weight GEMMs (by weight size) and of attention's activation products."""

    linear: float = 0.0
    attention: float = 0.0

    def describe(self) -> str:
        return f"{self.linear:.0%} of weight GEMMs, {self.attention:.0%} of attention products in int8"


NONE = QuantisedShare()


def graph_share(model: onnx.ModelProto) -> QuantisedShare:
    graph = model.graph
    shapes = {init.name: list(init.dims) for init in graph.initializer}
    producers = {out: node for node in graph.node for out in node.output}

    def weight(name: str) -> list[int] | None:
        """The constant weight behind an input: an initializer, or one through DequantizeLinear / Transpose."""
        if name in shapes:
            return shapes[name]
        node = producers.get(name)
        if node is not None and node.op_type in ("DequantizeLinear", "Transpose", "Cast") and node.input:
            return weight(node.input[0])
        return None

    def dequantised(name: str) -> bool:
        node = producers.get(name)
        return node is not None and node.op_type == "DequantizeLinear"

    linear = {True: 0, False: 0}  # int8? -> weight elements
    products = {True: 0, False: 0}  # int8? -> activation products
    for node in graph.node:
        op = node.op_type
        if op not in INT8_KERNELS | FP32_GEMMS | FUSED_ATTENTION or len(node.input) < 2:
            continue
        if op in FUSED_ATTENTION:
            w = weight(node.input[1])
            if w is not None and len(w) == 2:
                linear[op == "QAttention"] += w[0] * w[1]
            products[False] += 2  # Q.K^T and A.V run in fp32 inside every fused attention kernel
            continue
        int8 = op in INT8_KERNELS or (dequantised(node.input[0]) and dequantised(node.input[1]))
        w = weight(node.input[1])
        if w is not None and len(w) >= 2:
            linear[int8] += w[-2] * w[-1]
        else:
            products[int8] += 1
    return QuantisedShare(_share(linear), _share(products))


def _share(counts: dict[bool, int]) -> float:
    total = counts[True] + counts[False]
    return counts[True] / total if total else 0.0


@functools.cache
def file_share(path: Path) -> QuantisedShare:
    return graph_share(onnx.load(str(path), load_external_data=False))


# Nodes between a MatMul and what feeds it that change neither the values' origin nor their precision class.
_PASS_THROUGH = {"Convert", "Reshape", "Transpose", "Unsqueeze", "Squeeze", "Multiply", "Subtract"}


def _origin(node: object) -> tuple[bool, list[int] | None]:
    """(quantised?, the weight's shape if a constant) of what feeds a MatMul input, through pass-throughs."""
    quantised = False
    while True:
        kind = node.get_type_name()  # type: ignore[attr-defined]
        if kind == "FakeQuantize":
            quantised = True
        elif kind == "Constant":
            element = node.get_element_type().get_type_name()  # type: ignore[attr-defined]
            return quantised or element in ("i8", "u8"), list(node.get_output_shape(0))  # type: ignore[attr-defined]
        elif kind not in _PASS_THROUGH:
            return quantised, None
        node = node.input_value(0).get_node()  # type: ignore[attr-defined]


def model_share(model: object) -> QuantisedShare:
    """The int8 share of an OpenVINO model (ov.Model), as `graph_share` reads an ONNX graph."""
    linear = {True: 0, False: 0}
    products = {True: 0, False: 0}
    for node in model.get_ordered_ops():  # type: ignore[attr-defined]
        kind = node.get_type_name()
        if kind == "ScaledDotProductAttention":
            products[False] += 2
            continue
        if kind != "MatMul":
            continue
        (q0, w0), (q1, w1) = (_origin(node.input_value(i).get_node()) for i in range(2))
        weight = w1 if w1 is not None else w0
        int8 = q0 and q1
        if weight is not None and len(weight) >= 2:
            linear[int8] += weight[-2] * weight[-1]
        else:
            products[int8] += 1
    return QuantisedShare(_share(linear), _share(products))


@functools.cache
def ir_share(path: Path) -> QuantisedShare:
    import openvino as ov

    return model_share(ov.Core().read_model(str(path)))
