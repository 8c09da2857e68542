"""The README's arrows as a fact: every import of the source tree (at the top of a module or inside
a function: a deferred import is still a dependency) goes down the layers, never up, and no set
of modules imports itself round; Prefect, Ray and Pyomo stay in the packages that own them; a
stored network is loaded, described, exported and used to predict without the MIP stack."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("intnet", "flows", "pipeline", "formulations")

LAYERS = (
    ("intnet", "flows"),
    ("pipeline.training", "pipeline.stored", "pipeline.reporting", "pipeline.checkpoints"),
    ("pipeline.config",),
    ("pipeline.execution",),
    ("pipeline.solving",),
    ("pipeline.networks",),
    ("pipeline.data",),
    ("pipeline.errors", "pipeline"),
    ("formulations",),
)
"""Top to bottom. A module belongs to the layer of the longest prefix that names it; a module may
import its own layer and the layers below."""


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imported_names(module: str, source: str, is_package: bool = False) -> list[tuple[str, int]]:
    """Every name imported anywhere in the module's ``source``, absolute, with its line."""
    names = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = module.split(".")[: len(module.split(".")) - (0 if is_package else 1) - (node.level - 1)]
                base = ".".join(parent + ([node.module] if node.module else []))
            names.append((base, node.lineno))
            names += [(f"{base}.{alias.name}", node.lineno) for alias in node.names]
    return names


def project_edges() -> dict[str, dict[str, int]]:
    """module -> {project module it imports: line}."""
    known = modules()
    edges: dict[str, dict[str, int]] = {name: {} for name in known}
    for module, path in known.items():
        for name, line in imported_names(module, path.read_text(), path.name == "__init__.py"):
            parts = name.split(".")
            target = next((".".join(parts[:i]) for i in range(len(parts), 0, -1) if ".".join(parts[:i]) in known), None)
            if target is not None and target != module:
                edges[module].setdefault(target, line)
    return edges


def layer_of(module: str) -> int:
    best, rank = -1, None
    for index, layer in enumerate(LAYERS):
        for prefix in layer:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, rank = len(prefix), index
    assert rank is not None, f"{module} is in no layer; add it to LAYERS"
    return rank


def cycles(edges: dict[str, dict[str, int]]) -> list[list[str]]:
    """The import cycles, one per strongly connected component of more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in edges.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_every_import_goes_down_the_layers():
    upward = [f"{module} imports {target} (line {line})"
              for module, targets in project_edges().items() for target, line in targets.items()
              if layer_of(target) < layer_of(module)]
    assert upward == []


def test_no_modules_import_each_other_round():
    assert cycles(project_edges()) == []


def test_the_checks_see_an_upward_import_and_a_cycle():
    """The two checks above fail on the shapes they exist for (the tree once had both:
    pipeline.solving.solve imported pipeline.config inside a function, and the executors module
    and the Ray executor imported each other)."""
    edges = {"pipeline.solving.solve": {"pipeline.config": 94}, "pipeline.config": {"pipeline.solving.solve": 1}}
    assert layer_of("pipeline.config") < layer_of("pipeline.solving.solve")
    assert cycles(edges) == [["pipeline.config", "pipeline.solving.solve"]]
    found = imported_names("pipeline.solving.solve", "def option_default():\n    from ..config import TrainConfig\n")
    assert ("pipeline.config.TrainConfig", 2) in found


@pytest.mark.parametrize("library, owners", [
    ("prefect", ("flows",)),
    ("ray", ("pipeline.execution.ray_executor",)),
    ("pyomo", ("formulations", "pipeline.solving", "pipeline.config", "pipeline.stored")),
])
def test_each_heavy_library_is_imported_only_where_it_belongs(library, owners):
    known = modules()
    importers = sorted({module for module, path in known.items()
                        for name, _ in imported_names(module, path.read_text(), path.name == "__init__.py")
                        if name == library or name.startswith(library + ".")})
    assert importers, f"nothing imports {library}: the check would pass for any tree"
    assert [m for m in importers if not any(m == o or m.startswith(o + ".") for o in owners)] == []


USE_A_STORED_NETWORK = """
import json, sys
import numpy as np
from intnet import load
from flows import cli
model = load(sys.argv[1])
labels = model.predict(np.array([[0.5, 0.25], [1.0, 0.0]]))
for command in (["info", sys.argv[1], "--json"], ["export", sys.argv[1], "--format", "c", "--out", sys.argv[2]],
                ["export", sys.argv[1], "--format", "onnx", "--out", sys.argv[3]]):
    assert cli.main(command) == 0
heavy = [name for name in ("pyomo", "ray", "prefect", "highspy") if name in sys.modules]
print(json.dumps({"labels": [str(label) for label in labels], "heavy": heavy}))
"""


@pytest.mark.subprocess
def test_a_stored_network_is_used_without_pyomo_ray_or_prefect(tmp_path):
    """Loading, predicting, ``info`` and both exports, in a fresh interpreter: none of the MIP
    stack, Ray or Prefect is imported (they cost seconds to import and are not needed)."""
    from formulations import IntegerNetwork
    from pipeline.networks.storage import StoredNetwork, write_network

    network = IntegerNetwork((np.array([[3, -2], [0, 1]]), np.array([[1, 1], [-1, 1]])),
                             (np.array([0, -1]), np.array([0, 1])), 3)
    preprocessing = {"decimals": 4, "label": "y", "columns": [
        {"kind": "numeric", "name": "a", "low": 0.0, "high": 1.0},
        {"kind": "numeric", "name": "b", "low": 0.0, "high": 1.0}]}
    path = write_network(tmp_path / "model.parquet",
                         StoredNetwork.single(network, ("no", "yes"), preprocessing, {"dataset": "arrays"}))
    done = subprocess.run([sys.executable, "-c", USE_A_STORED_NETWORK, str(path), str(tmp_path / "model.h"),
                           str(tmp_path / "model.onnx")], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    expected = network.predict(np.array([[0.5, 0.25], [1.0, 0.0]]))
    assert report["labels"] == [("no", "yes")[i] for i in expected]
    assert report["heavy"] == []
