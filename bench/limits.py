"""This machine's limit: the best GEMM rate each precision reaches here, measured in the same session.

A model can only be as fast as the matrix multiplications it is made of, so each case's
achieved FLOP rate is held against the best rate GEMMs reach with the same precision, threads
and libraries. For the limit to be a bound it must be the best this machine does, not one
probe's typical rate: every kernel runs at several shapes (a large square one, and each
benchmarked model's own GEMMs: [tokens, hidden] x [hidden, hidden | 3*hidden | ffn] and
[tokens, ffn] x [ffn, hidden] at the token counts the bench times), its rate is taken from its
fastest round, and a precision's limit is the best over all of them. PyTorch's and ONNX
Runtime's fp32 GEMMs differ by tens of percent on some CPUs; for INT8 MatMulInteger (u8 x s8
-> s32, VNNI's VPDPBUSD) and DynamicQuantizeMatMul (what a dynamically quantised model runs)
are both measured. OpenVINO's CPU plugin adds its own: a FullyConnected in f32, in bf16 (where the
CPU has it natively), and in u8 x i8 (a FakeQuantize on the activations and int8 weights with their
scale: what NNCF's int8 IR holds, run by oneDNN's brgemm); PyTorch adds a bf16 matmul. The limit
of a precision is the best of every runtime's probes: the best this machine reaches.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

GEMM_SIZE = 2048  # big enough to reach peak on a few cores, small enough to stay in a 32 MiB L3
GPU_GEMM_SIZE = 8192
LIMIT_MAX_TIME = 0.3  # seconds of rounds per probe: the best round is what counts, not a distribution
Shape = tuple[int, int, int]  # m, k, n: [m, k] x [k, n]
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
    needs_bf16: str | None = None  # "torch" | "openvino": skipped where that runtime's bf16 is not native

    @property
    def flops(self) -> int:
        return 2 * self.m * self.k * self.n

    @property
    def shape_text(self) -> str:
        return f"{self.m}x{self.k}x{self.n}"


def _torch_matmul(shape: Shape, device: str, dtype_name: str) -> Callable[[int], Callable[[], Any]]:
    m, k, n = shape

    def build(threads: int) -> Callable[[], Any]:
        import torch

        torch.set_num_threads(threads)
        dtype = getattr(torch, dtype_name)
        a = torch.randn(m, k, device=device).to(dtype)
        b = torch.randn(k, n, device=device).to(dtype)
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


def _ort_gemm(op: str, shape: Shape) -> Callable[[int], Callable[[], Any]]:
    """A one-node graph: `op` on an activation [m, k] and a constant weight [k, n]."""
    m, k, n = shape

    def build(threads: int) -> Callable[[], Any]:
        from onnx import TensorProto, helper, numpy_helper

        rng = np.random.default_rng(0)
        domain = "com.microsoft" if op == "DynamicQuantizeMatMul" else ""
        if op == "MatMul":
            a_type, out_type = TensorProto.FLOAT, TensorProto.FLOAT
            a = rng.standard_normal((m, k), dtype=np.float32)
            inits = [numpy_helper.from_array(rng.standard_normal((k, n), dtype=np.float32), "B")]
            inputs = ["A", "B"]
        else:
            weight = numpy_helper.from_array(rng.integers(-127, 128, (k, n), dtype=np.int8), "B")
            if op == "MatMulInteger":  # u8 activations x s8 weights, as VNNI's VPDPBUSD wants them
                a_type, out_type = TensorProto.UINT8, TensorProto.INT32
                a = rng.integers(0, 256, (m, k), dtype=np.uint8)
                inits, inputs = [weight], ["A", "B"]
            else:  # DynamicQuantizeMatMul: fp32 in, quantised on the fly, what quantised models run
                a_type, out_type = TensorProto.FLOAT, TensorProto.FLOAT
                a = rng.standard_normal((m, k), dtype=np.float32)
                scale = numpy_helper.from_array(np.array(0.01, dtype=np.float32), "S")
                inits, inputs = [weight, scale], ["A", "B", "S"]
        graph = helper.make_graph(
            [helper.make_node(op, inputs, ["Y"], domain=domain)],
            op,
            [helper.make_tensor_value_info("A", a_type, [m, k])],
            [helper.make_tensor_value_info("Y", out_type, [m, n])],
            inits,
        )
        session = _ort_session(graph, threads)
        return lambda: session.run(None, {"A": a})

    return build


def _openvino_gemm(kind: str, shape: Shape) -> Callable[[int], Callable[[], Any]]:
    """A FullyConnected in OpenVINO: `kind` f32 or bf16 (float weights at that inference precision), or
    int8 (u8 activations through a FakeQuantize x i8 weights dequantised by a per-row scale)."""
    m, k, n = shape

    def build(threads: int) -> Callable[[], Any]:
        import openvino as ov
        import openvino.opset13 as ops

        from distill.predict.openvino_runtime import compile_config

        rng = np.random.default_rng(0)
        a = ops.parameter([m, k], ov.Type.f32, name="A")
        if kind == "int8":
            low, high = ops.constant(np.float32(-4.0)), ops.constant(np.float32(4.0))
            activations = ops.fake_quantize(a, low, high, low, high, 256)
            weights = ops.constant(rng.integers(-127, 128, (n, k)).astype(np.int8))
            scale = ops.constant(np.full((n, 1), 0.01, dtype=np.float32))
            y = ops.matmul(activations, ops.multiply(ops.convert(weights, ov.Type.f32), scale), False, True)
        else:
            y = ops.matmul(a, ops.constant(rng.standard_normal((k, n)).astype(np.float32)), False, False)
        precision = "bf16" if kind == "bf16" else "f32"
        compiled = ov.Core().compile_model(ov.Model([y], [a]), "CPU", compile_config(threads, precision))
        request = compiled.create_infer_request()
        x = rng.standard_normal((m, k)).astype(np.float32)
        return lambda: request.infer({0: x})

    return build


def bf16_reason(runtime: str) -> str | None:
    """Why a bf16 probe of `runtime` would not run native bf16 here (it is skipped then), None where it does."""
    if runtime == "openvino":
        from distill.predict.openvino_runtime import default_precision

        found = default_precision()
        return None if found == "bf16" else f"OpenVINO's CPU plugin runs {found} here, not native bf16"
    from distill.hardware import bf16_refusal, cpu_features

    reason = bf16_refusal(*cpu_features())
    return f"no native bf16 here: {reason}" if reason else None


def model_shapes(hidden: int, ffn: int, tokens: int) -> list[Shape]:
    """The weight GEMMs of one transformer layer at `tokens` tokens: Q/K/V/output, fused QKV, the FFN pair."""
    return [
        (tokens, hidden, hidden),
        (tokens, hidden, 3 * hidden),
        (tokens, hidden, ffn),
        (tokens, ffn, hidden),
    ]


def kernels(cpu_shapes: list[Shape] | None = None, gpu_shapes: list[Shape] | None = None) -> list[Kernel]:
    """Every limit probe: each kernel at each shape (a large square GEMM first, then the models' own)."""
    cpu = _unique([(GEMM_SIZE,) * 3, *(cpu_shapes or [])])  # type: ignore[list-item]
    gpu = _unique([(GPU_GEMM_SIZE,) * 3, *(gpu_shapes or [])])  # type: ignore[list-item]
    found: list[Kernel] = []
    for shape in cpu:
        found += [
            Kernel("torch matmul fp32", "fp32", *shape, _torch_matmul(shape, "cpu", "float32")),
            Kernel("onnxruntime MatMul fp32", "fp32", *shape, _ort_gemm("MatMul", shape)),
            Kernel("onnxruntime MatMulInteger u8s8", "int8", *shape, _ort_gemm("MatMulInteger", shape)),
            Kernel(
                "onnxruntime DynamicQuantizeMatMul", "int8", *shape, _ort_gemm("DynamicQuantizeMatMul", shape)
            ),
            Kernel("openvino FullyConnected f32", "fp32", *shape, _openvino_gemm("f32", shape)),
            Kernel("openvino FullyConnected u8s8", "int8", *shape, _openvino_gemm("int8", shape)),
            Kernel(
                "openvino FullyConnected bf16",
                "bf16",
                *shape,
                _openvino_gemm("bf16", shape),
                needs_bf16="openvino",
            ),
            Kernel(
                "torch matmul bf16",
                "bf16",
                *shape,
                _torch_matmul(shape, "cpu", "bfloat16"),
                needs_bf16="torch",
            ),
        ]
    for shape in gpu:
        for precision, dtype in (
            ("cuda-fp32", "float32"),
            ("cuda-fp16", "float16"),
            ("cuda-bf16", "bfloat16"),
        ):
            found.append(
                Kernel(
                    f"torch matmul cuda {dtype.replace('float', 'fp').replace('bfp', 'bf')}",
                    precision,
                    *shape,
                    _torch_matmul(shape, "cuda", dtype),
                    needs_cuda=True,
                )
            )
    return found


def _unique(shapes: list[Shape]) -> list[Shape]:
    return list(dict.fromkeys(tuple(s) for s in shapes))  # type: ignore[misc]


def best_rates(measured: list[tuple[str, float]]) -> dict[str, float]:
    """precision -> best FLOP/s among (precision, FLOP/s) measurements."""
    best: dict[str, float] = {}
    for precision, rate in measured:
        best[precision] = max(best.get(precision, 0.0), rate)
    return best
