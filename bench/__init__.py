"""The benchmark suite: `pytest bench --benchmark-only [--run-dir DIR] [--report-dir DIR]`.

One idea per file:
  conftest.py      options, parametrisation, the report at the end of the session
  context.py       one session over one run: its cases and the loaded models they share
  catalog.py       the run directory as the bench sees it (models, ONNX variants, stated F1)
  runtimes.py      PyTorch / ONNX Runtime rows and the backends they become
  inputs.py        fixed-shape synthetic batches for the latency matrix
  timing.py        how many warm-up calls and rounds each case gets
  flops.py         FLOPs per sequence from a model's config
  limits.py        this machine's GEMM limit per precision (several shapes, the models' own)
  quantised.py     what an ONNX model runs in int8, read from its graph (the limit mix)
  placement.py     where onnxruntime ran each node (a CUDA row with compute on the CPU is refused)
  memory.py        peak memory of one model and runtime, in a child process
  reference.py     the optimum-defaults int8 reference row, and whether it is our int8 (same model)
  machine.py       CPU, cores, ISA, GPU and versions
  contention.py    how much CPU other processes took meanwhile (export/contention.py)
  summary.py       every case's figures joined with the run's files
  report.py        benchmark.md (+ .json), plot.py the F1-latency frontier PNG
  real_size_run.py a timing-only run with LayoutLMv3-base and DistilBERT-base (random weights)
  test_*.py        the cases: machine limit, latency matrix, end to end
  gpu_check.sh     the GPU half on a tiny run (a CPU-only dry run without a GPU)
"""
