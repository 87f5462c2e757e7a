"""Imports follow the data: a stage never imports a later stage, what several stages share sits below them, and
there is no import cycle between packages. Read from the source (every import, lazy ones included), not from
what a test run happens to import."""

import ast
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "sse_dist"

# Lowest first: a package may import only packages of a lower rank (shared ones also each other, and entry
# points each other; the cycle test covers those).
SHARED = {"config", "storage", "phoneset", "frontend", "models"}
BESIDE = {"metrics", "launch"}
STAGES = ["synth", "shard", "preprocess", "train", "embed", "score"]
ENTRY_POINTS = {"cli", "demo", "plan", "api", "__init__"}
RANK = {
    **dict.fromkeys(SHARED, 0),
    **dict.fromkeys(BESIDE, 1),
    **{s: 2 + i for i, s in enumerate(STAGES)},
    **dict.fromkeys(ENTRY_POINTS, 2 + len(STAGES)),
}


def _package_of(path: Path) -> str:
    """The top-level package (or module) of sse_dist that a file belongs to."""
    rel = path.relative_to(PACKAGE)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def _imported(path: Path) -> set[str]:
    """Top-level sse_dist packages a file imports, at module level or inside functions."""
    here = ["sse_dist", *path.relative_to(PACKAGE).with_suffix("").parts]
    package = here[:-1]  # a module's own package; for an __init__, the package it defines
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name.split(".") for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = [*base, *(node.module.split(".") if node.module else [])]
            # ``from . import storage`` names modules; ``from .x import y`` names a module and its members.
            targets = [[*module, a.name] for a in node.names] if not node.module else [module]
        else:
            continue
        found |= {t[1] for t in targets if t[0] == "sse_dist" and len(t) > 1}
    return found


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = defaultdict(set)
    for path in sorted(PACKAGE.rglob("*.py")):
        src = _package_of(path)
        graph[src] |= _imported(path) - {src}
    return graph


def test_every_package_has_a_place_in_the_order():
    unplaced = sorted(set(_graph()) - set(RANK))
    assert not unplaced, (
        f"place {unplaced} in tests/test_imports.py: shared, beside, a stage or an entry point"
    )


def test_no_stage_imports_a_later_stage_and_shared_code_imports_no_stage():
    wrong = [
        f"{src} imports {dst}"
        for src, dsts in _graph().items()
        for dst in sorted(dsts)
        if RANK[dst] > RANK[src] or (RANK[dst] == RANK[src] and src not in SHARED | ENTRY_POINTS)
    ]
    assert wrong == []


def test_config_imports_nothing_outside_config():
    assert _graph()["config"] == set()


def test_no_import_cycle_between_packages():
    graph, done, path = _graph(), set(), []

    def visit(node: str) -> None:
        if node in path:
            raise AssertionError("import cycle: " + " -> ".join([*path[path.index(node) :], node]))
        if node in done:
            return
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            visit(nxt)
        path.pop()
        done.add(node)

    for node in sorted(graph):
        visit(node)


def test_the_scan_sees_the_imports_it_checks():
    # The rules above pass vacuously on an empty graph: make sure known edges are found.
    graph = _graph()
    assert {"config", "storage", "frontend", "models", "shard", "metrics"} <= graph["train"]
    assert "models" in graph["embed"] and "frontend" in graph["preprocess"]
