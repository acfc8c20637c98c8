"""Shared fixtures: every test runs offline; end-to-end runs write into temporary directories."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]
FUNSD = REPO.parent / "shared" / "data" / "funsd"


def run_cli(
    args: list[str], cwd: Path, timeout: int = 600, check: bool = True
) -> subprocess.CompletedProcess:
    """Run `python -m ...` as a user would, from `cwd` (so runs/latest lands there, not in the repo)."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(args)} exited {proc.returncode}:\n{proc.stderr[-4000:]}")
    return proc


@pytest.fixture(scope="session")
def quickstart_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The README's main job, exactly: `python -m distill.train --preset quickstart`."""
    home = tmp_path_factory.mktemp("quickstart")
    proc = run_cli(
        ["-m", "distill.train", "--preset", "quickstart", "--report-dir", str(home / "reports")], cwd=home
    )
    # What the user saw, for the tests of the terminal output.
    (home / "stdout.txt").write_text(proc.stdout)
    (home / "stderr.txt").write_text(proc.stderr)
    return (home / "runs" / "latest").resolve()
