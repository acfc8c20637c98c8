"""Every `python -m` command in the README and docs/ parses with its module's own argument parser.

The commands are fed to the parser, not run: a renamed option or a moved module fails here.
"""

from __future__ import annotations

import argparse
import importlib
import re
import shlex
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# module -> how to get its parser (each CLI's own build_parser)
PARSERS: dict[str, str] = {
    "distill.train": "distill.train",
    "export.onnx": "export.onnx",
    "distill.predict": "distill.predict.__main__",
    "distill.studies.funsd": "distill.studies.funsd",
    "distill.studies.ocr": "distill.studies.ocr",
    "distill.studies.ocr_tuning": "distill.studies.ocr_tuning",
}
FENCE = re.compile(r"```[a-z]*\n(.*?)```", re.S)


def as_the_shell_reads(line: str, variables: dict[str, str]) -> str:
    """`$(command)` stands for the path it prints; `$NAME` set earlier in the doc (NAME="...") is
    spliced in unquoted, word-split as the shell would."""
    line = re.sub(r"\$\([^)]*\)", "MODEL_DIR", line)
    return re.sub(r"(?<!['\w])\$(\w+)\b", lambda m: variables.get(m.group(1), m.group(0)), line)


def fenced_commands() -> list[tuple[str, str, list[str]]]:
    found = []
    for doc in DOCS:
        variables: dict[str, str] = {}
        for block in FENCE.findall(doc.read_text(encoding="utf-8")):
            for line in block.replace("\\\n", " ").splitlines():
                line = line.split(" #", 1)[0].strip()
                assignment = re.fullmatch(r"(\w+)=\"(.*)\"", line)
                if assignment:
                    variables[assignment.group(1)] = as_the_shell_reads(assignment.group(2), variables)
                    continue
                line = as_the_shell_reads(line, variables)
                match = re.search(r"python -m ([\w.]+)(.*)", line)
                if not match or match.group(1) not in PARSERS or "..." in line:
                    continue
                words = shlex.split(match.group(2).split("|")[0].split(">")[0].split("&&")[0])
                found.append((doc.name, match.group(1), words))
    return found


def parser_of(module: str) -> Callable[[], argparse.ArgumentParser]:
    return importlib.import_module(PARSERS[module]).build_parser


COMMANDS = fenced_commands()


def test_the_docs_hold_commands_of_every_stage() -> None:
    assert {m for _, m, _ in COMMANDS} >= {"distill.train", "export.onnx", "distill.predict"}


@pytest.mark.parametrize(("doc", "module", "words"), COMMANDS, ids=[f"{d}:{m}" for d, m, _ in COMMANDS])
def test_a_fenced_command_parses(doc: str, module: str, words: list[str]) -> None:
    parser = parser_of(module)()
    passed_on: list[str] = []
    if module == "distill.studies.funsd" and "--" in words:  # the study hands these to every run
        words, passed_on = words[: words.index("--")], words[words.index("--") + 1 :]
    try:
        parser.parse_args(words)
        if passed_on:
            parser_of("distill.train")().parse_args(passed_on)
    except SystemExit as err:  # an unknown option or a bad value: argparse exits
        pytest.fail(f"{doc}: python -m {module} {shlex.join(words)} does not parse (exit {err.code})")


def test_the_check_catches_an_option_that_does_not_exist() -> None:
    with pytest.raises(SystemExit):
        parser_of("distill.train")().parse_args(["--no-such-option", "1"])
