"""The layers of docs/architecture.md: no module imports a layer above its own, or a peer."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("lab", "checks", "provision")
# a module may import its own layer and the layers of a lower rank, nothing else
LAYERS = {
    "lab.core": 0,
    "lab.remote": 1,
    "lab.providers": 2,
    "lab.facts": 2,
    "lab.observe": 3,
    "checks": 4,
    "provision": 4,
    "lab.grading": 5,
    "lab.faults": 5,
    "lab.course": 5,
    "lab.cli": 6,
}
OUTSIDE_A_FOLDER = {"lab": "lab.core", "lab.__version__": "lab.core", "lab.__main__": "lab.cli"}


def layer_of(module: str) -> str | None:
    """The layer that `module` is, or lies under."""
    if module in OUTSIDE_A_FOLDER:
        return OUTSIDE_A_FOLDER[module]
    matches = [name for name in LAYERS if module == name or module.startswith(name + ".")]
    return max(matches, key=len, default=None)


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> list[tuple[int, str]]:
    """Every project module `path` imports, at the top or inside a function."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
    return [(line, name) for line, name in found if name.split(".")[0] in PACKAGES]


def violations(root: Path) -> list[str]:
    """Each import that runs against the layers, as `path:line: what`."""
    found = []
    for path in (p for package in PACKAGES for p in sorted((root / package).rglob("*.py"))):
        where, own = path.relative_to(root), layer_of(module_name(root, path))
        if own is None:
            found.append(f"{where}: in no layer")
            continue
        for line, name in imports(path):
            target = layer_of(name)
            if target is None:
                found.append(f"{where}:{line}: {name} is in no layer")
            elif target != own and LAYERS[target] >= LAYERS[own]:
                found.append(f"{where}:{line}: {own} imports {target} ({name})")
    return found


def test_no_module_imports_a_layer_above_its_own_or_a_peer():
    assert violations(ROOT) == []


@pytest.mark.parametrize(
    ("module", "source", "found"),
    [
        ("lab/core/topology.py", "from lab.cli.app import main", "lab.core imports lab.cli"),
        ("checks/web.py", "def f():\n    from provision import lb", "checks imports provision"),
        ("lab/facts/ss.py", "from lab.providers import lxc", "lab.facts imports lab.providers"),
        ("lab/helpers.py", "", "lab/helpers.py: in no layer"),
        ("lab/cli/app.py", "from lab.core import errors\nfrom checks import base", None),
    ],
)
def test_an_import_against_the_layers_is_found(tmp_path, module, source, found):
    path = tmp_path / module
    path.parent.mkdir(parents=True)
    path.write_text(source + "\n")
    reported = violations(tmp_path)
    if found:
        assert len(reported) == 1 and found in reported[0], reported
    else:
        assert reported == []


@pytest.mark.parametrize("layer", sorted(LAYERS))
def test_docs_architecture_names_every_layer_by_its_folder(layer):
    page = (ROOT / "docs" / "architecture.md").read_text()
    assert f"{layer.replace('.', '/')}/" in page
