"""Training side: data sources, window encoding, models, word-level distillation, metrics, CLI."""
