"""The command a report says wrote it, in a form its reader can run: no path only the writer's machine has.

A path given relative stays as given. An absolute one becomes relative when it lies under the
working directory, and otherwise a named placeholder (`$T`, `RUN`) that the report explains beside
the command, or stays as it is when the report names no placeholder for it.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path


def _relative_under(path: Path, cwd: Path) -> str | None:
    """`path` relative to the working directory when it lies under it, else None."""
    return os.path.relpath(path, cwd) if cwd == path or cwd in path.parents else None


def _portable_path(value: str, placeholders: Mapping[str, str], cwd: Path) -> str | None:
    """The word for one absolute path, or None when `value` is not one (left as given)."""
    if not value.startswith(("/", "~")):
        return None
    path = Path(value).expanduser()
    relative = _relative_under(path, cwd)
    if relative is not None:
        return shlex.quote(relative)
    named = named_path(path, placeholders)
    if named is not None:
        name, rest = named
        return name if rest == "." else f"{name}/{shlex.quote(rest)}"
    return shlex.quote(value)


def named_path(path: Path, placeholders: Mapping[str, str]) -> tuple[str, str] | None:
    """(placeholder, the rest of `path` below its directory: "." for the directory itself) when
    `path` is, or lies under, one of the `placeholders`' paths; else None."""
    for name, base in placeholders.items():
        base_path = Path(base).expanduser()
        if path == base_path or base_path in path.parents:
            return name, path.relative_to(base_path).as_posix()
    return None


def portable_command(
    words: Sequence[str], placeholders: Mapping[str, str | Path] | None = None, cwd: Path | None = None
) -> str:
    """`words` joined as a shell command, each absolute path made portable (see the module docstring).

    `placeholders`: display name -> the path it stands for, e.g. {"$T": "/root/.cache/mpnet"}.
    """
    cwd = (cwd or Path.cwd()).resolve()
    named = {name: str(path) for name, path in (placeholders or {}).items() if path}
    out = []
    for word in words:
        option, eq, value = word.partition("=") if word.startswith("--") else ("", "", word)
        portable = _portable_path(value, named, cwd)
        if portable is None:
            out.append(shlex.quote(word))
        else:
            out.append(f"{option}={portable}" if eq else portable)
    return " ".join(out)


def shown_path(value: str, cwd: Path | None = None) -> str:
    """A path for prose (not a command, so never shell-quoted): as given, or relative when it lies
    under the working directory."""
    path = Path(value).expanduser()
    relative = _relative_under(path, (cwd or Path.cwd()).resolve()) if path.is_absolute() else None
    return value if relative is None else relative


def run_word(run: str | Path, cwd: Path | None = None) -> str:
    """A run directory as a command's word: relative under the working directory, else RUN."""
    return portable_command([str(run)], {"RUN": run}, cwd)


def portable_run(run: str | Path, cwd: Path | None = None) -> str:
    """How a report names its run directory: relative under the working directory, else RUN with the
    directory's name (the reader's run lives elsewhere; its name says which one was meant)."""
    word = run_word(run, cwd)
    return f"`{word}`" + (f" (a run directory named `{Path(run).name}`)" if word == "RUN" else "")


def uses_placeholder(command: str, name: str) -> bool:
    for word in command.split():
        value = word.partition("=")[2] if word.startswith("--") else word
        if value == name or value.startswith(f"{name}/"):
            return True
    return False


def placeholder_note(
    placeholders: Mapping[str, str | Path | None], meaning: Mapping[str, str], command: str
) -> str:
    """'`$T`: the teacher's model directory (here `…/all-mpnet-base-v2`)' for each placeholder `command` uses."""
    parts = []
    for name, path in placeholders.items():
        if path and uses_placeholder(command, name):
            tail = "/".join(Path(str(path)).parts[-2:])
            parts.append(f"`{name}`: {meaning[name]} (here `…/{tail}`)")
    return "; ".join(parts)
