"""One copy of the teacher's word targets for a whole study, shared by its distilled runs.

The cache in each run directory (distill/training/teacher_targets.py) is keyed by content: the teacher's weights,
the forms and the encoding, not the student. A study whose seeds share one teacher (--teacher-seed)
therefore needs those targets once, not once per distilled run (minutes of a base-size teacher on
two cores each time). Before a run, every target file the study holds is linked into the run's
cache; after it, the files the run computed are linked back. A run with another teacher or other
forms finds no matching key and computes its own, as before.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from distill.training.teacher_targets import CACHE_DIR


def link_or_copy(source: Path, target: Path) -> None:
    """`target` as a hard link to `source` (no second copy on disk), or a copy across file systems.

    Cache files are written under a temporary name and renamed, so a file seen is complete; the
    link itself goes under a temporary name too, so a reader never meets a half-made one.
    """
    if target.exists():
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        os.link(source, temporary)
    except OSError:
        shutil.copy2(source, temporary)
    os.replace(temporary, target)


def share_into(run: Path, study: Path) -> None:
    """Give `run` every teacher-target file the study has cached so far."""
    for source in sorted((study / CACHE_DIR).glob("*.npz")):
        link_or_copy(source, run / CACHE_DIR / source.name)


def collect_from(run: Path, study: Path) -> None:
    """Keep the teacher-target files `run` computed in the study's cache, for the runs after it."""
    for source in sorted((run / CACHE_DIR).glob("*.npz")):
        link_or_copy(source, study / CACHE_DIR / source.name)
