"""The packages are layers that import one way only, read from the source with ``ast``.

From the bottom: the formula language (``dsl``) imports nothing of the project; the data layer (datasets,
tables, errors) imports only ``dsl``; the search (enumeration and fitting) and the learning (``meta_tailor``)
each import only the layers below, never each other; the application (``discover``, run folders) imports all
of these; the command line imports everything. Nobody imports another layer's private module (a dotted path
with a part that starts with ``_``), benchmarks included: what crosses a layer is public.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: Layer of a module: the first prefix that matches (the longest prefixes are listed first).
LAYER_OF = (
    ("formula_search.cli", "cli"),
    ("formula_search.runs", "application"),
    ("formula_search._run_folder", "application"),
    ("formula_search._law_choice", "application"),
    ("formula_search._protocol_choice", "application"),
    ("formula_search.errors", "data"),
    ("formula_search.io", "data"),
    ("formula_search.version", "data"),
    ("formula_search.data", "data"),
    ("formula_search.progress", "data"),
    ("formula_search", "search"),
    ("meta_tailor", "learning"),
    ("dsl", "dsl"),
)

#: The layers each layer may import (its own included).
ALLOWED = {
    "dsl": {"dsl"},
    "data": {"dsl", "data"},
    "search": {"dsl", "data", "search"},
    "learning": {"dsl", "data", "learning"},
    "application": {"dsl", "data", "search", "learning", "application"},
    "cli": {"dsl", "data", "search", "learning", "application", "cli"},
    "benchmarks": {"dsl", "data", "search", "learning", "application", "cli"},
}

#: The package ``formula_search`` itself is the public face of the application: its ``__init__`` may import
#: the application layer, and importing a name from it is importing that layer.
PACKAGE_INIT_LAYER = {"formula_search": "application", "meta_tailor": "learning", "dsl": "dsl"}

PROJECT = ("dsl", "formula_search", "meta_tailor")


def layer(module: str) -> str | None:
    if module in PACKAGE_INIT_LAYER:
        return PACKAGE_INIT_LAYER[module]
    for prefix, name in LAYER_OF:
        if module == prefix or module.startswith(prefix + "."):
            return name
    return None


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path, source: str | None = None) -> list[tuple[int, str]]:
    """(line, dotted module) of every import of the project in a file, inside functions too."""
    module = module_name(path)
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    found = []
    for node in ast.walk(ast.parse(source if source is not None else path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            # ``from pkg import module`` imports the module; ``from module import _name`` a private name
            submodules = [
                f"{target}.{a.name}" for a in node.names if is_module(f"{target}.{a.name}")
            ]
            private = [f"{target}.{a.name}" for a in node.names if a.name.startswith("_")]
            names = (
                sorted(set(submodules + private))
                if len(submodules) == len(node.names)
                else [target]
            )
            names += [name for name in private if name not in names]
        else:
            continue
        found += [(node.lineno, name) for name in names if name.split(".")[0] in PROJECT]
    return found


def is_module(dotted: str) -> bool:
    path = ROOT.joinpath(*dotted.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def is_private(module: str) -> bool:
    return any(part.startswith("_") and not part.startswith("__") for part in module.split(".")[1:])


def own_package_init(path: Path, target: str) -> bool:
    """A package's ``__init__`` is its public face: it may gather names from its own private modules."""
    return path.name == "__init__.py" and target.startswith(module_name(path) + ".")


def violations(path: Path, source: str | None = None) -> list[str]:
    module = module_name(path)
    own = "benchmarks" if module.startswith("benchmarks") else layer(module)
    if own is None:
        return []
    problems = []
    for line, target in imported_modules(path, source):
        theirs = layer(target)
        if theirs is None:
            continue
        where = f"{path.relative_to(ROOT)}:{line} imports {target}"
        if theirs not in ALLOWED[own]:
            problems.append(f"{where}: the {own} layer may not import the {theirs} layer")
        elif theirs != own and is_private(target) and not own_package_init(path, target):
            problems.append(f"{where}: a private module of the {theirs} layer")
    return problems


def project_files() -> list[Path]:
    files = []
    for folder in (*PROJECT, "benchmarks"):
        files += sorted((ROOT / folder).rglob("*.py"))
    return files


def test_every_module_has_a_layer():
    for path in project_files():
        module = module_name(path)
        assert module.startswith("benchmarks") or layer(module) is not None, module


def test_the_layers_import_one_way_only():
    problems = [problem for path in project_files() for problem in violations(path)]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    ("path", "line", "why"),
    [
        (
            "dsl/_parse.py",
            "from formula_search.errors import InputError",
            "dsl layer may not import the data",
        ),
        (
            "formula_search/_fit.py",
            "from meta_tailor.advanced import rank",
            "search layer may not import the learning",
        ),
        (
            "meta_tailor/_rank.py",
            "from formula_search.runs import execute",
            "may not import the application",
        ),
        ("meta_tailor/_rank.py", "import formula_search.cli", "may not import the cli"),
        (
            "formula_search/data/_load.py",
            "from formula_search._fit import FitConfig",
            "data layer may not",
        ),
        (
            "formula_search/runs.py",
            "from meta_tailor._rank import rank",
            "a private module of the learning",
        ),
        (
            "benchmarks/fit.py",
            "from formula_search._fit import fit_formulas",
            "a private module of the search",
        ),
        (
            "formula_search/cli/fit_cmd.py",
            "from formula_search import _fit",
            "a private module of the search",
        ),
    ],
)
def test_a_wrong_import_is_caught(path, line, why):
    file = ROOT / path
    source = file.read_text() + "\n\ndef _added():\n    " + line + "\n"
    assert not violations(file), "the file must be clean before the wrong import is added"
    assert any(why in problem for problem in violations(file, source)), violations(file, source)
