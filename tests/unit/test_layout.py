"""The shape of the code, held by a test: arrows point one way down the flow, and functions stay short."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Lower layers first. A module may import a lower layer, or its own package; never a higher layer, nor
# another package of its own layer (the stages meet through the records, not through each other).
LAYERS: tuple[tuple[str, ...], ...] = (
    (
        "pipeline.errors",
        "pipeline.records",
        "pipeline.identity",
        "pipeline.offsets",
        "pipeline.contract",
        "pipeline.xmltext",
        "pipeline.config",
        "pipeline.kafka",
        "pipeline.logs",
        "pipeline.metrics",
        "pipeline._tasks",
    ),
    ("pipeline.marketo",),
    ("pipeline.ingest", "pipeline.dedupe", "pipeline.batch", "pipeline.deliver", "pipeline.outcome"),
    ("pipeline.flow", "pipeline.ops", "pipeline.sim"),
    ("pipeline.app",),
    ("pipeline.demo",),
    ("pipeline.cli",),
    ("pipeline.__main__",),
)
FOUNDATION = LAYERS[0]
MAX_FUNCTION_LINES = 40


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    module = _module_name(path)
    return _imports_of(path.read_text(), module if path.name == "__init__.py" else module.rpartition(".")[0])


def _imports_of(source: str, package: str) -> set[str]:
    """Every module `source` imports, wherever the import is: `from a import b` names `a` and `a.b`, and a
    relative import is resolved against `package`, the module's own."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*parent, base] if base else parent)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def _unit(module: str) -> tuple[int, str] | None:
    """(layer, package) of a pipeline module: its layer, and the group it may import freely within."""
    for rank, layer in enumerate(LAYERS):
        for unit in layer:
            if module == unit or module.startswith(unit + "."):
                return rank, ("foundation" if layer is FOUNDATION else unit)
    return None


def _sources(*folders: str) -> list[Path]:
    return sorted(path for folder in folders for path in (ROOT / folder).rglob("*.py"))


def test_every_pipeline_module_has_a_layer() -> None:
    assert [_module_name(p) for p in _sources("pipeline") if _unit(_module_name(p)) is None] == ["pipeline"]


def test_no_arrow_from_a_lower_stage_to_a_higher_one() -> None:
    wrong = []
    for path in _sources("pipeline"):
        here = _unit(_module_name(path))
        if here is None:
            continue
        for imported in _imports(path):
            there = _unit(imported)
            if there is None or there[1] == here[1]:
                continue
            if there[0] >= here[0]:
                wrong.append(f"{_module_name(path)} -> {imported}")
    assert wrong == []


def test_shipped_code_never_imports_the_devkit_the_bench_or_the_tests() -> None:
    rules = {"pipeline": ("devkit", "bench", "tests"), "devkit": ("bench", "tests"), "bench": ("tests",)}
    wrong = [
        f"{_module_name(path)} -> {imported}"
        for folder, forbidden in rules.items()
        for path in _sources(folder)
        for imported in _imports(path)
        if imported.split(".")[0] in forbidden
    ]
    assert wrong == []


def test_no_function_in_the_pipeline_is_over_forty_lines() -> None:
    long = []
    for path in _sources("pipeline"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno is not None:
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{_module_name(path)}.{node.name}: {lines} lines")
    assert long == []


def test_every_form_of_import_is_seen() -> None:
    source = (
        "from pipeline import app\nfrom ..flow import Flow\nfrom . import decode\ndef f():\n    import pipeline.demo\n"
    )
    found = _imports_of(source, "pipeline.ingest")
    assert {"pipeline.app", "pipeline.flow", "pipeline.flow.Flow", "pipeline.ingest.decode", "pipeline.demo"} <= found


def test_the_checks_above_can_fail() -> None:
    assert _unit("pipeline.dedupe.window") == (2, "pipeline.dedupe")
    assert _unit("pipeline.ingest.decode") == (2, "pipeline.ingest")
    # dedupe -> ingest is an arrow between two stages: the rule above refuses it.
    assert _unit("pipeline.ingest.decode")[0] >= _unit("pipeline.dedupe.window")[0]  # type: ignore[index]
    assert _unit("pipeline.app")[0] > _unit("pipeline.ops.http")[0]  # type: ignore[index]
