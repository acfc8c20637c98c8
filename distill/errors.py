"""The one exception type every CLI prints as a plain message (no traceback)."""

from __future__ import annotations

from pathlib import Path


class DistillError(Exception):
    """A problem with the user's input: a file, a directory, an option.

    The message always names what is wrong and, where there is one, the file.
    """

    def __init__(self, message: str, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self.message = message
        super().__init__(f"{path}: {message}" if path is not None else message)
