"""The stages of a training run, each reading the one ResolvedRun (distill/training/resolve.py).

common.py    encoding, scoring, training one model and saving it; metrics.json's records
teacher.py   the teacher: fine-tuned here, reused from --teacher-dir or the run, or an ensemble
students.py  the distilled student and its baseline: teacher targets, transfer set, training
collapse.py  a teacher that answers one label almost everywhere, caught before it is distilled
"""
