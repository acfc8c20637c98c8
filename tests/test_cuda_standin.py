"""The CUDA code paths of the bench on the CPU, through CI's CUDA stand-in (tests/cuda_standin).

Each test runs the real CUDA branch (PyTorch CUDA rows, ONNX Runtime through I/O binding, the
placement check) with only the device replaced; `bench/gpu_check.sh` under the stand-in, a step
of .ci/run, runs every CUDA case the bench collects.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from bench.runtimes import BY_NAME, CudaOrtBackend, Unavailable, check_available, device_call, onnx_backend
from distill.predict import OrtBackend
from tests import cuda_standin

VOCAB, WIDTH, LABELS = 50, 8, 3


@pytest.fixture
def standin(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv(cuda_standin.CPU_OPS_ENV, raising=False)
    with cuda_standin.active():
        yield


def _token_model(path: Path) -> Path:
    """input_ids -> embedding Gather -> MatMul -> logits, with the Shape arithmetic every exported graph has."""
    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(rng.standard_normal((VOCAB, WIDTH), dtype=np.float32), "E"),
        numpy_helper.from_array(rng.standard_normal((WIDTH, LABELS), dtype=np.float32), "W"),
        numpy_helper.from_array(np.array([LABELS], dtype=np.int64), "C"),
        numpy_helper.from_array(np.array([0, 1], dtype=np.int64), "I"),
    ]
    nodes = [
        helper.make_node("Gather", ["E", "input_ids"], ["h"], name="embeddings"),
        helper.make_node("MatMul", ["h", "W"], ["y"], name="classifier"),
        helper.make_node("Shape", ["input_ids"], ["s"], name="shape"),
        helper.make_node("Gather", ["s", "I"], ["bs"], name="dims", axis=0),
        helper.make_node("Concat", ["bs", "C"], ["out_shape"], name="out_shape", axis=0),
        helper.make_node("Reshape", ["y", "out_shape"], ["logits"], name="reshape"),
    ]
    graph = helper.make_graph(
        nodes,
        "tokens",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["b", "s"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["b", "s", LABELS])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    path.write_bytes(model.SerializeToString())
    return path


def _batch(tokens: int = 16) -> dict[str, np.ndarray]:
    ids = np.random.default_rng(1).integers(0, VOCAB, (1, tokens), dtype=np.int64)
    return {"input_ids": ids, "attention_mask": np.ones_like(ids)}


def test_the_stand_in_reports_cuda_names_itself_and_goes_away(tmp_path: Path) -> None:
    real_session = ort.InferenceSession
    with cuda_standin.active():
        assert torch.cuda.is_available() and "stand-in" in torch.cuda.get_device_name(0)
        assert torch.randn(2, 2, device="cuda").device.type == "cpu"  # the device underneath
        check_available(BY_NAME["torch-cuda-bf16"])
        check_available(BY_NAME["ort-cuda-fp16"])  # the one-node CUDA session now reports CUDA
    assert ort.InferenceSession is real_session
    if torch.version.cuda is None:  # this machine: a CPU build of torch, so the rows skip again
        with pytest.raises(Unavailable, match="CPU-only torch build"):
            check_available(BY_NAME["torch-cuda-fp32"])


def test_pytorch_cuda_rows_run_their_cuda_branch_in_plain_fp32(standin: None) -> None:
    from transformers import DistilBertConfig, DistilBertForTokenClassification

    from bench.runtimes import torch_backend

    config = DistilBertConfig(
        vocab_size=VOCAB, dim=16, hidden_dim=32, n_layers=1, n_heads=2, num_labels=LABELS
    )
    torch.manual_seed(0)
    model = DistilBertForTokenClassification(config)
    reference = torch_backend(model, BY_NAME["torch-fp32"], 1)(_batch())
    torch.backends.cudnn.allow_tf32 = True
    for name in ("torch-cuda-fp32", "torch-cuda-bf16"):
        backend = torch_backend(model, BY_NAME[name], 1)
        logits = device_call(backend, _batch())()  # the CUDA branch: device tensors, synchronise
        assert logits.dtype == (torch.bfloat16 if "bf16" in name else torch.float32)
        assert np.allclose(backend(_batch()), reference, atol=0.1)
    assert not torch.backends.cudnn.allow_tf32 and not torch.backends.cuda.matmul.allow_tf32


def test_ort_cuda_rows_bind_on_the_device_without_tf32_and_match_the_cpu(
    standin: None, tmp_path: Path
) -> None:
    path = _token_model(tmp_path / "m.onnx")
    batch = _batch()
    backend = onnx_backend(path, BY_NAME["ort-cuda-fp32"], 1, probe=batch)  # placement checked
    assert isinstance(backend, CudaOrtBackend)
    assert backend.providers[0] == "CUDAExecutionProvider"
    assert backend.session.cuda_options == {"device_id": 0, "use_tf32": 0}  # fp32 means fp32
    device_call(backend, batch)()  # I/O binding: inputs bound once, the device waited for
    cpu = OrtBackend(path, providers=["CPUExecutionProvider"])(batch)
    assert np.array_equal(backend(batch), cpu)


def test_a_cuda_row_is_refused_when_per_token_work_stays_on_the_cpu(
    standin: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _token_model(tmp_path / "m.onnx")
    monkeypatch.setenv(cuda_standin.CPU_OPS_ENV, "Gather")  # a provider without a Gather kernel
    with pytest.raises(Unavailable, match=r"per-token tensors on or to the CPU in Gather x1 .*in embeddings"):
        onnx_backend(path, BY_NAME["ort-cuda-fp32"], 1, probe=_batch())
    monkeypatch.delenv(cuda_standin.CPU_OPS_ENV)
    onnx_backend(path, BY_NAME["ort-cuda-fp32"], 1, probe=_batch())  # shape arithmetic alone is fine


def test_the_stand_in_refuses_cuda_options_the_provider_does_not_have(standin: None, tmp_path: Path) -> None:
    path = _token_model(tmp_path / "m.onnx")
    with pytest.raises(RuntimeError, match="use_tf23"):
        ort.InferenceSession(str(path), providers=[("CUDAExecutionProvider", {"use_tf23": 0})])
