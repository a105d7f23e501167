"""The layering of docs/architecture.md, checked on the source: every import of every module of
the project's packages (at module level, inside functions, under TYPE_CHECKING, and
`importlib.import_module("...")` with a literal name) goes to its own layer or one below."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("chfen", "labeling", "warehouse", "flows")

# Bottom to top: domain 0, warehouse 1, chfen 2, labeling 3, flows 4.
LAYER_NAMES = ("domain", "warehouse", "chfen", "labeling", "flows")
# The domain layer's modules, and chfen/__init__.py (importing chfen.domain runs it).
DOMAIN = ("chfen.domain", "chfen.labels")  # chfen.labels: the label set's older address
# Third-party packages only one layer may import.
ONLY_IN = {"prefect": "flows", "prefect_dask": "flows"}


def layer_of(module: str) -> int | None:
    """The layer of a project module, None for anything outside the project."""
    if module == "chfen" or any(module == d or module.startswith(d + ".") for d in DOMAIN):
        return 0
    top = module.split(".")[0]
    return LAYER_NAMES.index(top) if top in LAYER_NAMES[1:] else None


def is_module(name: str) -> bool:
    """Whether `name` is a module or package of the project (not a name inside one)."""
    path = ROOT.joinpath(*name.split("."))
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path, root: Path = ROOT) -> Iterator[tuple[int, str]]:
    """(line, imported module) for every import in the file, relative ones resolved."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module_name(path, root).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                name = ".".join([*base, node.module] if node.module else base)
            else:
                name = node.module or ""
            yield node.lineno, name
            for alias in node.names:  # `from chfen import config` imports chfen.config
                if is_module(f"{name}.{alias.name}"):
                    yield node.lineno, f"{name}.{alias.name}"
        elif (
            isinstance(node, ast.Call)
            and (
                (isinstance(node.func, ast.Attribute) and node.func.attr == "import_module")
                or (isinstance(node.func, ast.Name) and node.func.id == "__import__")
            )
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            yield node.lineno, node.args[0].value


def sources() -> list[Path]:
    return sorted(
        p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py") if "__pycache__" not in p.parts
    )


def violations(paths: list[Path], root: Path = ROOT) -> list[str]:
    """Every import that breaks the layering, as 'file:line: module (layer) imports ...'."""
    found = []
    for path in paths:
        me = module_name(path, root)
        mine = layer_of(me)
        assert mine is not None, me
        for line, target in imports(path, root):
            where = f"{path.relative_to(root)}:{line}: {me} ({LAYER_NAMES[mine]})"
            theirs = layer_of(target)
            if theirs is not None and theirs > mine:
                found.append(f"{where} imports {target} ({LAYER_NAMES[theirs]}, a layer above)")
            top = target.split(".")[0]
            if top in ONLY_IN and not me.startswith(ONLY_IN[top]):
                found.append(f"{where} imports {target} (only {ONLY_IN[top]}/ may)")
    return found


def test_every_package_is_scanned() -> None:
    paths = sources()
    names = {module_name(p) for p in paths}
    assert {"chfen.domain.votes", "warehouse.quality", "labeling.push", "flows.cli"} <= names
    # the layers named in the docs are the layers checked here
    doc = (ROOT / "docs" / "architecture.md").read_text()
    for folder in ("chfen/domain/", "warehouse/", "chfen/", "labeling/", "flows/"):
        assert folder in doc


def test_no_import_breaks_the_layering() -> None:
    found = violations(sources())
    assert not found, "imports that break docs/architecture.md's layers:\n" + "\n".join(found)


def test_the_check_catches_forbidden_imports(tmp_path: Path) -> None:
    """The checker itself, on throw-away modules: each forbidden import is reported."""
    cases = {
        "chfen/domain/bad.py": "from warehouse import Warehouse\n",
        "chfen/train/bad.py": "def f():\n    import labeling.agreement\n",
        "warehouse/bad.py": "from chfen.config import Settings\n",
        "labeling/bad.py": "from flows import cli\n",
        "chfen/media/bad.py": "import importlib\nimportlib.import_module('flows.quality')\n",
        "chfen/embed/bad.py": "from prefect import flow\n",
        "chfen/domain/sub/bad.py": "from ... import config\n",  # chfen.config, relative
    }
    paths = []
    for rel, code in cases.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(code)
        paths.append(path)
    found = violations(paths, tmp_path)
    for rel in cases:
        assert any(f.startswith(rel + ":") for f in found), (rel, found)
    ok = tmp_path / "labeling" / "fine.py"
    ok.write_text("from chfen.domain import PLUTCHIK\nfrom warehouse import Warehouse\n")
    assert violations([ok], tmp_path) == []


@pytest.mark.parametrize("path", ["chfen/domain/labels.py", "chfen/__init__.py"])
def test_the_bottom_of_the_domain_imports_nothing_of_the_project(path: str) -> None:
    project = {layer_of(t) for _, t in imports(ROOT / path)} - {None}
    assert project <= {0}


def test_the_docs_list_every_stage_and_component() -> None:
    """docs/architecture.md names every stage of the registry and every `COMPONENT` constant
    (modules that are not stages; it only prefixes their error messages), and a `STAGE`
    constant set to a literal names a registry stage: a stage cannot be left out of the
    registry or the docs."""
    from chfen import registry

    doc = (ROOT / "docs" / "architecture.md").read_text()

    def constants(name: str) -> set[str]:
        pattern = rf'^{name} = "([^"]+)"'
        return {m.group(1) for p in sources() for m in re.finditer(pattern, p.read_text(), re.M)}

    components = constants("COMPONENT")
    assert {"labelstudio", "prefect-server", "label_project", "label_simulate"} <= components
    assert not components & set(registry.names())
    assert constants("STAGE") <= set(registry.names())
    missing = sorted(s for s in [*registry.names(), *components] if f"`{s}`" not in doc)
    assert not missing, f"stages or components missing from docs/architecture.md: {missing}"
