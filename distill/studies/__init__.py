"""Multi-run studies (FUNSD, OCR): their plan and queue, tables, targets, speed timing, plots and cache.

The top room: may import training, terms, predict, data and the core; nothing imports a study.
"""
