"""The training run: options resolved once (resolve.py), preflight, the stages, fit, the training report.

May import the terms, the core, data and predict's backends; never export, bench or the studies.
"""
