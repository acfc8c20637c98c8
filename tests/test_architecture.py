"""The house plan (docs/architecture.md): rooms, the arrows allowed between them, no circle, small files.

Read from the source with `ast` (imports under TYPE_CHECKING and inside functions count: each is a
file that has to know another), so a new upward import or a circle fails here, not in review.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("distill", "export", "bench")
MAX_LINES = 500
# The thin command-line entry points at distill/: they may start any stage.
ENTRY_POINTS = {"distill.train", "distill.funsd_report", "distill.ocr_report"}

# room -> the rooms it may import from (itself always).
ALLOWED = {
    "core": set(),
    "data": {"core"},
    "terms": {"core"},
    "predict": {"core", "data"},
    "training": {"core", "data", "terms", "predict"},
    "studies": {"core", "data", "terms", "predict", "training"},
    "entry": {"core", "data", "terms", "predict", "training", "studies"},
    "export": {"core", "data", "predict"},
    "bench": {"core", "data", "predict", "export"},
}


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


def room(module: str) -> str:
    parts = module.split(".")
    if parts[0] in ("export", "bench"):
        return parts[0]
    if module in ENTRY_POINTS:
        return "entry"
    if len(parts) > 1 and parts[1] in ("data", "terms", "predict", "training", "studies"):
        return parts[1]
    return "core"


def imports(module: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The project modules `module` imports, anywhere in the file."""
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, *([base] if base else [])])
            targets = [base, *(f"{base}.{a.name}" for a in node.names)]
        else:
            continue
        for target in targets:
            # `import distill.x.y` also runs distill.x's __init__; count the deepest module named.
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != module and target not in PACKAGES:
                found.add(target)
    return found


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(name, path, known) for name, path in known.items()}


def test_every_import_follows_the_arrows_between_rooms() -> None:
    wrong = [
        f"{m} ({room(m)}) imports {t} ({room(t)})"
        for m, targets in graph().items()
        for t in sorted(targets)
        if room(t) != room(m) and room(t) not in ALLOWED[room(m)]
    ]
    assert not wrong, "\n".join(wrong)


def test_no_import_circle() -> None:
    edges = graph()
    state: dict[str, int] = {}
    stack: list[str] = []
    circles: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                circles.append(" -> ".join([*stack[stack.index(nxt) :], nxt]))
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node)
    assert not circles, "\n".join(circles)


def test_no_module_is_over_500_lines() -> None:
    long = {
        str(p.relative_to(ROOT)): n
        for p in modules().values()
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert not long, long


def test_each_room_has_its_subpackage_and_says_what_it_may_import() -> None:
    for name in ("training", "terms", "studies", "predict", "data"):
        init = ROOT / "distill" / name / "__init__.py"
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))) or ""
        assert "import" in doc, f"{init} should say what its room may import"


@pytest.mark.parametrize(
    ("module", "target", "allowed"),
    [
        ("distill.windows", "distill.training.fit", False),
        ("distill.terms.declared", "distill.training.trainer", False),
        ("export.onnx", "distill.training.transfer_set", False),
        ("bench.limits", "distill.training.preflight", False),
        ("distill.training.fit", "distill.terms.declared", True),
        ("distill.studies.funsd", "distill.training.resolve", True),
    ],
)
def test_the_room_rule_itself_tells_right_from_wrong(module: str, target: str, allowed: bool) -> None:
    """The checker would catch the reach-ins this layout removed (issue 31), and allows the arrows down."""
    assert (room(target) == room(module) or room(target) in ALLOWED[room(module)]) is allowed
