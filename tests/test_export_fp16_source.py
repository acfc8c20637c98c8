"""The graph fp16 is made from: built without any onnxruntime session, and checked to load on the CPU."""

from __future__ import annotations

from pathlib import Path

import onnxruntime as ort
import pytest
from onnx import TensorProto, helper
from transformers import PretrainedConfig

from export.export_types import loads_on_cpu
from export.optimize import optimize
from tests.test_cuda_standin import _token_model


def test_the_gpu_graph_is_fused_in_python_alone_whatever_the_machine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A graph a CUDA session optimised and saved holds Memcpy nodes a CPU cannot load: no session at all."""

    def no_session(*args: object, **kwargs: object) -> None:
        raise AssertionError("onnxruntime optimised the GPU graph in a session")

    monkeypatch.setattr(ort, "InferenceSession", no_session)
    out = tmp_path / "gpu.onnx"
    optimize(_token_model(tmp_path / "m.onnx"), out, PretrainedConfig(), use_gpu=True)
    monkeypatch.undo()
    assert loads_on_cpu(out) is True


def test_a_graph_the_cpu_cannot_load_is_named_with_onnxruntimes_reason(tmp_path: Path) -> None:
    """BiasSplitGelu has a CUDA kernel only: a graph holding it (as a CUDA-optimised one may) fails on the CPU.

    (onnxruntime 1.30 and 1.31 load and run a graph holding MemcpyFromHost on the CPU.)
    """
    inputs = [
        helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 8]),
        helper.make_tensor_value_info("b", TensorProto.FLOAT, [8]),
    ]
    out = [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 4])]
    node = helper.make_node("BiasSplitGelu", ["x", "b"], ["y"], domain="com.microsoft")
    graph = helper.make_graph([node], "cuda-only", inputs, out)
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = 9
    path = tmp_path / "model.onnx"
    path.write_bytes(model.SerializeToString())
    reason = loads_on_cpu(path)
    assert reason is not True and "BiasSplitGelu" in str(reason)
