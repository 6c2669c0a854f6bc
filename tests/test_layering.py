"""The package's layers, read from the source: every import between wavenet's modules runs
one way. Imports inside functions and under `if TYPE_CHECKING:` count too: a type-only
import is still an arrow a reader has to follow.

The order, lowest first (a layer may import the ones it lists, never the other way):

    errors, version -> config -> util -> coding -> nn -> generation
                                      coding -> data
                                                nn -> io (checkpoint format, export)
    eval (bits, copy synthesis, baselines, plots) above nn, data, generation and io
    train above all of them; wavenet/__init__.py re-exports; the CLI above everything

Within a subpackage modules may import each other, but never in a circle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import wavenet

PACKAGE = Path(wavenet.__file__).parent
CLI = PACKAGE.parent / "cli"

# Each unit and the units below it that it may import.
_BELOW: dict[str, set[str]] = {
    "errors": set(),
    "version": set(),
    "config": {"errors"},
    "util": {"errors", "config"},
    "coding": {"errors", "config"},
    "nn": {"errors", "config", "util", "coding"},
    "data": {"errors", "config", "util", "coding"},
    "generation": {"errors", "config", "util", "coding", "nn"},
    "io": {"errors", "version", "config", "util", "coding", "nn"},
    "eval": {"errors", "config", "util", "coding", "nn", "data", "generation", "io"},
    "train": {"errors", "config", "util", "coding", "nn", "data", "generation", "io", "eval"},
}
UNITS = set(_BELOW)


def _module_name(path: Path) -> str:
    """wavenet/nn/model.py -> "nn.model"; wavenet/nn/__init__.py -> "nn"."""
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve(module: str, is_package: bool, node: ast.ImportFrom | ast.Import) -> list[str]:
    """The wavenet modules (dotted, under wavenet) that one import statement reads."""
    if isinstance(node, ast.Import):
        return [
            a.name.removeprefix("wavenet.")
            for a in node.names
            if a.name == "wavenet" or a.name.startswith("wavenet.")
        ]
    if node.level == 0:
        if node.module is None or not (
            node.module == "wavenet" or node.module.startswith("wavenet.")
        ):
            return []
        base = node.module.removeprefix("wavenet").lstrip(".")
    else:
        package = module.split(".") if is_package else module.split(".")[:-1]
        if module == "":
            package = []
        keep = len(package) - (node.level - 1)
        assert keep >= 0, f"{module}: a relative import climbs out of the package"
        base = ".".join(package[:keep] + ([node.module] if node.module else []))
    targets = []
    for alias in node.names:  # `from pkg import submodule` reads the submodule
        candidate = f"{base}.{alias.name}" if base else alias.name
        if (PACKAGE / Path(*candidate.split("."))).with_suffix(".py").exists() or (
            PACKAGE / Path(*candidate.split(".")) / "__init__.py"
        ).exists():
            targets.append(candidate)
        else:
            targets.append(base)
    return targets


def _imports() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        module = _module_name(path)
        tree = ast.parse(path.read_text(encoding="utf-8"))
        edges: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                edges |= set(_resolve(module, path.name == "__init__.py", node))
        edges.discard(module)
        graph[module] = edges
    return graph


def _unit(module: str) -> str:
    return module.split(".")[0]


def test_every_module_belongs_to_a_layer() -> None:
    for module in _imports():
        assert module == "" or _unit(module) in UNITS, (
            f"wavenet/{module.replace('.', '/')} is in no layer: add it to test_layering.py"
        )


def test_imports_run_one_way() -> None:
    wrong = []
    for module, targets in _imports().items():
        if module == "":  # wavenet/__init__.py: the public face re-exports any layer
            continue
        for target in targets:
            if target == "":
                wrong.append(f"{module} -> wavenet (the package's face; import the module)")
            elif _unit(target) != _unit(module) and _unit(target) not in _BELOW[_unit(module)]:
                wrong.append(f"{module} -> {target}")
    assert not wrong, "imports against the layer order:\n" + "\n".join(sorted(wrong))


def test_no_circle_of_imports() -> None:
    graph = _imports()
    for start in sorted(graph):
        seen: set[str] = set()
        todo = [t for t in graph[start] if t in graph]
        while todo:
            current = todo.pop()
            assert current != start, f"a chain of imports from wavenet.{start} leads back to it"
            if current not in seen:
                seen.add(current)
                todo.extend(t for t in graph.get(current, ()) if t in graph)


def test_the_library_never_imports_the_cli() -> None:
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            assert not any(n.split(".")[0] in {"wavenet_cli", "cli", "click"} for n in names), (
                f"{path.relative_to(PACKAGE.parent)} imports the CLI or click"
            )


def test_the_checker_sees_a_wrong_way_import(tmp_path: Path) -> None:
    """The rules above catch what they are for: a type-only import of the training loop
    from the network, and an import inside a function, are both arrows."""
    source = (
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
        "    from ..train.loop import TrainOptions\n"
        "def f():\n    from ..data import audio\n"
    )
    tree = ast.parse(source)
    found = {
        t
        for node in ast.walk(tree)
        if isinstance(node, (ast.Import, ast.ImportFrom))
        for t in _resolve("nn.model", False, node)
    }
    assert {"train.loop", "data.audio"} <= found
    assert "train" not in _BELOW["nn"] and "data" not in _BELOW["nn"]
