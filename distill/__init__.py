"""docdistill's shared core: windows, labels, entities, metrics, schema, models, and the run contract.

Top-level modules here import only each other; the rooms below (data, terms, predict, training,
studies) build on them, and `train.py` is the training CLI. docs/architecture.md draws the arrows.
"""
