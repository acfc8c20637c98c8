"""This machine's limit: the best GEMM rate each precision reaches here, measured in the same session.

A model can only be as fast as the matrix multiplications it is made of, so each case's
achieved FLOP rate is held against the best rate a plain large GEMM reaches with the same
precision, threads and libraries. The limit of a precision is the best of its kernels:
PyTorch's and ONNX Runtime's fp32 GEMMs differ by tens of percent on some CPUs, and for INT8
MatMulInteger (u8 x s8 -> s32, VNNI's VPDPBUSD) and DynamicQuantizeMatMul (what a dynamically
quantised model runs) are both measured.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

GEMM_SIZE = (
    2048  # big enough to reach peak on a few cores, small enough to stay in a 32 MiB L3 (4096 falls off)
)
GPU_GEMM_SIZE = 8192
ONNX_OPSET = 17
ONNX_IR_VERSION = 9  # loads in every onnxruntime from 1.15 on


@dataclass(frozen=True)
class Kernel:
    """One GEMM the limit is measured with: `build(threads)` returns a zero-argument callable."""

    name: str
    precision: str  # the limit it counts towards: fp32, int8, cuda-fp32, cuda-fp16, cuda-bf16
    m: int
    k: int
    n: int
    build: Callable[[int], Callable[[], Any]]
    needs_cuda: bool = False

    @property
    def flops(self) -> int:
        return 2 * self.m * self.k * self.n


def _torch_matmul(size: int, device: str, dtype_name: str) -> Callable[[int], Callable[[], Any]]:
    def build(threads: int) -> Callable[[], Any]:
        import torch

        torch.set_num_threads(threads)
        dtype = getattr(torch, dtype_name)
        a = torch.randn(size, size, device=device).to(dtype)
        b = torch.randn(size, size, device=device).to(dtype)
        if device == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = False  # fp32 means fp32, not TF32

            def run() -> Any:
                out = a @ b
                torch.cuda.synchronize()
                return out

            return run
        return lambda: a @ b

    return build


def _ort_session(graph: Any, threads: int) -> Any:
    import onnxruntime as ort
    from onnx import helper

    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", ONNX_OPSET), helper.make_opsetid("com.microsoft", 1)]
    )
    model.ir_version = ONNX_IR_VERSION
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def _ort_gemm(op: str, size: int) -> Callable[[int], Callable[[], Any]]:
    """A one-node graph: `op` on an activation [size, size] and a constant weight [size, size]."""

    def build(threads: int) -> Callable[[], Any]:
        from onnx import TensorProto, helper, numpy_helper

        rng = np.random.default_rng(0)
        domain = "com.microsoft" if op == "DynamicQuantizeMatMul" else ""
        if op == "MatMul":
            a_type, out_type = TensorProto.FLOAT, TensorProto.FLOAT
            a = rng.standard_normal((size, size), dtype=np.float32)
            inits = [numpy_helper.from_array(rng.standard_normal((size, size), dtype=np.float32), "B")]
            inputs = ["A", "B"]
        else:
            weight = numpy_helper.from_array(rng.integers(-127, 128, (size, size), dtype=np.int8), "B")
            if op == "MatMulInteger":  # u8 activations x s8 weights, as VNNI's VPDPBUSD wants them
                a_type, out_type = TensorProto.UINT8, TensorProto.INT32
                a = rng.integers(0, 256, (size, size), dtype=np.uint8)
                inits, inputs = [weight], ["A", "B"]
            else:  # DynamicQuantizeMatMul: fp32 in, quantised on the fly, what quantised models run
                a_type, out_type = TensorProto.FLOAT, TensorProto.FLOAT
                a = rng.standard_normal((size, size), dtype=np.float32)
                scale = numpy_helper.from_array(np.array(0.01, dtype=np.float32), "S")
                inits, inputs = [weight, scale], ["A", "B", "S"]
        graph = helper.make_graph(
            [helper.make_node(op, inputs, ["Y"], domain=domain)],
            op,
            [helper.make_tensor_value_info("A", a_type, [size, size])],
            [helper.make_tensor_value_info("Y", out_type, [size, size])],
            inits,
        )
        session = _ort_session(graph, threads)
        return lambda: session.run(None, {"A": a})

    return build


def kernels() -> list[Kernel]:
    s, g = GEMM_SIZE, GPU_GEMM_SIZE
    return [
        Kernel("torch matmul fp32", "fp32", s, s, s, _torch_matmul(s, "cpu", "float32")),
        Kernel("onnxruntime MatMul fp32", "fp32", s, s, s, _ort_gemm("MatMul", s)),
        Kernel("onnxruntime MatMulInteger u8s8", "int8", s, s, s, _ort_gemm("MatMulInteger", s)),
        Kernel("onnxruntime DynamicQuantizeMatMul", "int8", s, s, s, _ort_gemm("DynamicQuantizeMatMul", s)),
        Kernel(
            "torch matmul cuda fp32",
            "cuda-fp32",
            g,
            g,
            g,
            _torch_matmul(g, "cuda", "float32"),
            needs_cuda=True,
        ),
        Kernel(
            "torch matmul cuda fp16",
            "cuda-fp16",
            g,
            g,
            g,
            _torch_matmul(g, "cuda", "float16"),
            needs_cuda=True,
        ),
        Kernel(
            "torch matmul cuda bf16",
            "cuda-bf16",
            g,
            g,
            g,
            _torch_matmul(g, "cuda", "bfloat16"),
            needs_cuda=True,
        ),
    ]


def best_rates(measured: list[tuple[str, float]]) -> dict[str, float]:
    """precision -> best FLOP/s among (precision, FLOP/s) measurements."""
    best: dict[str, float] = {}
    for precision, rate in measured:
        best[precision] = max(best.get(precision, 0.0), rate)
    return best
