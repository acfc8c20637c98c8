"""One prediction API for every model and variant (see predictor.py); `python -m distill.predict` runs it.

May import the core and data only (export, bench and training use it; it uses none of them).

- `predictor`: windows -> backend -> merged word logits, labels and entities (`Predictor`);
- `onnx_runtime`: the ONNX Runtime backend (`OrtBackend`, `onnx_predictor`);
- `openvino_runtime`: the OpenVINO backend (`OvBackend`, `openvino_predictor`), for exported IR variants;
- `loading`: `load_predictor(path)`, whatever kind of model directory `path` is (a run directory too),
  windowed as its run was (`serving`);
- the CLI (`__main__`, `command`): `pages` (inputs -> pages: annotation JSON, images, PDFs), `ocr`
  (Tesseract), `stream` (OCR workers and shared batches, memory flat), `output` (JSON lines, atomic),
  `summary` (the closing lines).
"""

from distill.predict.loading import load_predictor, model_kind
from distill.predict.onnx_runtime import OrtBackend, cpu_providers, cuda_usable, onnx_predictor
from distill.predict.openvino_runtime import OvBackend, openvino_predictor
from distill.predict.predictor import (
    MODEL_INPUTS,
    Backend,
    FormPrediction,
    Predictor,
    TorchBackend,
    WordPrediction,
    id2label_list,
    model_input_names,
    predict_word_logits,
    select_inputs,
)

__all__ = [
    "MODEL_INPUTS",
    "Backend",
    "FormPrediction",
    "OrtBackend",
    "OvBackend",
    "Predictor",
    "TorchBackend",
    "WordPrediction",
    "cpu_providers",
    "cuda_usable",
    "id2label_list",
    "load_predictor",
    "model_kind",
    "model_input_names",
    "onnx_predictor",
    "openvino_predictor",
    "predict_word_logits",
    "select_inputs",
]
