"""Imports go one way: no seedzoo module imports one of a higher layer (docs/ARCHITECTURE.md's order)."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "seedzoo"
# Lowest first; units in one layer may import each other. `seedzoo` is the package root (the public API,
# which builds through `factory`).
LAYERS = [
    {"errors", "files", "lazy_exports"},
    {"zoo", "data"},
    {"timm_cfg"},
    {"models"},
    {"weights", "cards"},
    {"factory", "seedzoo"},
    {"evaluation"},
    {"training"},
    {"experiments"},
    {"cli", "__main__"},
]
LAYER = {unit: i for i, units in enumerate(LAYERS) for unit in units}


def _module(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _unit(module: str) -> str:
    """The top-level module or subpackage of a dotted name: `seedzoo.weights.io` -> `weights`."""
    parts = module.split(".")
    if len(parts) == 1:
        return "seedzoo"
    name = parts[1]
    return name if (PACKAGE / name).is_dir() or (PACKAGE / f"{name}.py").is_file() else "seedzoo"


def _imports(path: Path) -> list[str]:
    """Every seedzoo module `path` imports, at the top or inside a function."""
    module, is_package = _module(path), path.name == "__init__.py"
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names if a.name.split(".")[0] == "seedzoo"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            elif node.module and node.module.split(".")[0] == "seedzoo":
                target = node.module
            else:
                continue
            out += [f"{target}.{a.name}" for a in node.names] if node.module is None else [target]
    return out


FILES = sorted(PACKAGE.rglob("*.py"))


def test_every_unit_has_a_layer():
    units = {_unit(_module(p)) for p in FILES}
    assert units <= set(LAYER), f"add {sorted(units - set(LAYER))} to LAYERS and docs/ARCHITECTURE.md"


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_imports_a_higher_layer(path):
    here = _unit(_module(path))
    upward = [t for t in _imports(path) if LAYER[_unit(t)] > LAYER[here]]
    assert not upward, f"{_module(path)} ({here}) imports higher layers: {upward}"
