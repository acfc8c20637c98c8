"""ONNX export, graph optimisation, quantisation and validation of a run directory's models."""
