"""The layers of gradcam/ stay layers: no module imports another in a circle, and no
module takes an underscore name from another module of the package.

The graph is read from the source (ast), not from sys.modules, so it sees every
import: absolute and relative, at module level and inside functions (a lazy import
still runs on some path, and a circle through it still breaks that path). Importing
``gradcam.zoo.catalog`` also runs ``gradcam/zoo/__init__.py``, so an import of a
module in another sub-package counts as an import of that sub-package's
``__init__`` as well (the top package's own ``__init__``, which imports the public
API from everywhere, is the exception: every module sits inside it)."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def module_names(package_dir: Path) -> dict[str, Path]:
    """Dotted name -> file, for every module of the package (``__init__`` is the package)."""
    names = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = path.relative_to(package_dir.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names[".".join(parts)] = path
    return names


def is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def imports_of(module: str, path: Path, modules: dict[str, Path]):
    """Yield (imported module, name taken from it or None, line) for every import in the file."""
    is_package = path.name == "__init__.py"
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, None, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module
            for alias in node.names:
                submodule = f"{source}.{alias.name}"
                if submodule in modules:  # "from . import cam": the module itself
                    yield submodule, None, node.lineno
                else:
                    yield source, alias.name, node.lineno


def import_graph(package_dir: Path):
    """(edges: module -> set of modules it imports, private: [(module, line, source, name)])."""
    modules = module_names(package_dir)
    top = package_dir.name
    edges: dict[str, set[str]] = {name: set() for name in modules}
    private = []
    for module, path in modules.items():
        for source, name, line in imports_of(module, path, modules):
            if source is None or source.split(".")[0] != top:
                continue  # the standard library and third parties
            if name is not None and is_private(name) and source != module:
                private.append((module, line, source, name))
            if any(is_private(part) for part in source.split(".")[1:]):
                private.append((module, line, source, ""))
            targets = {source} if source in modules else set()
            # Importing a.b.c runs a.b's __init__ first, unless the importer lives inside a.b.
            parts = source.split(".")
            for n in range(2, len(parts)):
                ancestor = ".".join(parts[:n])
                if ancestor in modules and not (module == ancestor or module.startswith(ancestor + ".")):
                    targets.add(ancestor)
            edges[module] |= targets - {module}
    return edges, private


def find_circle(edges: dict[str, set[str]]) -> list[str] | None:
    """One circle [a, b, ..., a] if the graph has any (depth-first search, colours)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_gradcam_has_no_import_circle():
    edges, _ = import_graph(ROOT / "gradcam")
    assert len(edges) > 20, "the walk found the package's modules"
    circle = find_circle(edges)
    assert circle is None, "import circle: " + " -> ".join(circle)


def test_no_module_of_gradcam_imports_an_underscore_name_of_another():
    _, private = import_graph(ROOT / "gradcam")
    assert private == [], "\n".join(f"{m} (line {line}) imports {name or '(module)'} from {source}"
                                    for m, line, source, name in private)


# The layers, bottom to top (docs/layout.md, "How imports flow", lists them in this order).
LAYERS = ("errors", "intake", "engine", "zoo", "trust", "audit", "report", "scale", "cli")


def layer_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else None


def test_no_layer_imports_a_layer_above_it():
    edges, _ = import_graph(ROOT / "gradcam")
    upward = [(module, target) for module, targets in edges.items() for target in targets
              if layer_of(module) and layer_of(target)
              and LAYERS.index(layer_of(target)) > LAYERS.index(layer_of(module))]
    assert upward == [], "\n".join(f"{m} ({layer_of(m)}) imports {t} ({layer_of(t)}), a layer above it"
                                    for m, t in sorted(upward))


def test_the_layout_lists_the_layers_in_this_order():
    layout = (ROOT / "docs" / "layout.md").read_text(encoding="utf-8")
    assert "One way: " + " < ".join(f"`{name}`" for name in LAYERS) + "." in layout


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root / "pkg"


def test_the_walk_finds_a_circle_through_a_lazy_relative_import(tmp_path):
    package = write(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/engine/__init__.py": "",
        "pkg/engine/cam.py": "import os\nfrom ..zoo.models import load\n",
        "pkg/zoo/__init__.py": "",
        "pkg/zoo/models.py": "def load():\n    from pkg.engine import cam  # inside a function\n    return cam\n",
    })
    edges, private = import_graph(package)
    assert edges["pkg.engine.cam"] == {"pkg.zoo.models", "pkg.zoo"}
    assert edges["pkg.zoo.models"] == {"pkg.engine", "pkg.engine.cam"}
    assert find_circle(edges) == ["pkg.engine.cam", "pkg.zoo.models", "pkg.engine.cam"]
    assert private == []


def test_the_walk_finds_a_circle_through_a_sub_package_init(tmp_path):
    # zoo/__init__ re-exports catalog; catalog imports intake, which reaches back into zoo:
    # importing zoo.own_models runs zoo/__init__, which imports catalog again.
    package = write(tmp_path, {
        "pkg/__init__.py": "from .zoo import load\n",
        "pkg/zoo/__init__.py": "from .catalog import load\n",
        "pkg/zoo/catalog.py": "from ..intake.sandbox import run\n",
        "pkg/zoo/own_models.py": "X = 1\n",
        "pkg/intake/__init__.py": "",
        "pkg/intake/sandbox.py": "from ..zoo.own_models import X\n",
    })
    circle = find_circle(import_graph(package)[0])
    assert circle is not None and "pkg.zoo" in circle and "pkg.intake.sandbox" in circle


def test_a_layered_package_passes_and_underscore_names_are_caught(tmp_path):
    package = write(tmp_path, {
        "pkg/__init__.py": "from .engine.cam import explain\n",
        "pkg/cli.py": "import pkg\nfrom pkg.engine.cam import explain, __doc__\n",
        "pkg/engine/__init__.py": "",
        "pkg/engine/cam.py": "from ..errors import Bad\nfrom . import _util\ndef explain(): pass\n",
        "pkg/engine/_util.py": "",
        "pkg/errors.py": "class Bad(Exception): pass\n",
        "pkg/report.py": "def f():\n    from .engine.cam import _scores\n",
    })
    edges, private = import_graph(package)
    assert find_circle(edges) is None  # cli imports the package, whose __init__ does not import cli
    assert sorted((m, source, name) for m, _, source, name in private) == [
        ("pkg.engine.cam", "pkg.engine._util", ""), ("pkg.report", "pkg.engine.cam", "_scores")]


# --- the whole house: the library below, the dashboard's wing above it ----------------------------

# The dashboard's layers, bottom to top (docs/layout.md states this order); streamlit_app.py sits on top,
# beside explorer.py (the server that serves it: st.App with a start-up hook).
DASHBOARD_LAYERS = ("safe_text", "runtime", "parts", "pages")
ENTRY_POINTS = ("streamlit_app", "explorer")


def dashboard_layer_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in DASHBOARD_LAYERS else None


def ui_files() -> dict[str, Path]:
    """Dotted name -> file for every module of the UI: the dashboard package and the entry points."""
    return {**module_names(ROOT / "dashboard"), **{name: ROOT / f"{name}.py" for name in ENTRY_POINTS}}


def imports_everywhere(files: dict[str, Path]):
    """(module, imported module, name or None, line) for every import in ``files``."""
    gradcam_modules = module_names(ROOT / "gradcam")
    for module, path in files.items():
        for source, name, line in imports_of(module, path, {**gradcam_modules, **files}):
            yield module, source, name, line


def test_the_library_never_imports_streamlit_or_the_dashboard():
    found = [(m, line, source) for m, source, _, line in imports_everywhere(module_names(ROOT / "gradcam"))
             if source and source.split(".")[0] in ("streamlit", "dashboard", *ENTRY_POINTS)]
    assert found == [], "\n".join(f"{m} (line {line}) imports {source}" for m, line, source in found)


def test_the_ui_imports_only_public_names_of_the_library():
    """gradcam, or one of its sub-packages, and a name it exports: never a module inside a
    sub-package (gradcam.engine.cam), never a module taken as a name (from gradcam.zoo import
    catalog), never an underscore name."""
    library = module_names(ROOT / "gradcam")
    packages = {name for name, path in library.items() if path.name == "__init__.py"}
    wrong = []
    for module, source, name, line in imports_everywhere(ui_files()):
        if not source or source.split(".")[0] != "gradcam":
            continue
        if source not in packages or (name is not None and (is_private(name) or f"{source}.{name}" in library)):
            wrong.append(f"{module} (line {line}): from {source} import {name}" if name else
                         f"{module} (line {line}): import {source}")
    assert wrong == [], "the UI reaches past the library's public names:\n" + "\n".join(wrong)


def test_the_dashboard_is_layered_and_has_no_import_circle():
    edges, private = import_graph(ROOT / "dashboard")
    assert len(edges) > 20, "the walk found the dashboard's modules"
    circle = find_circle(edges)
    assert circle is None, "import circle: " + " -> ".join(circle)
    assert private == [], private
    upward = [(module, target) for module, targets in edges.items() for target in targets
              if dashboard_layer_of(module) and dashboard_layer_of(target)
              and DASHBOARD_LAYERS.index(dashboard_layer_of(target)) > DASHBOARD_LAYERS.index(dashboard_layer_of(module))]
    assert upward == [], "\n".join(f"{m} imports {t}, a layer above it" for m, t in sorted(upward))
    nobody_imports_an_entry_point = [m for m, source, _, _ in imports_everywhere(ui_files()) if source in ENTRY_POINTS]
    assert nobody_imports_an_entry_point == []


def test_importing_the_dashboard_starts_nothing():
    """boot() is explicit: no module of the wing calls a function at import time (module-level
    code is definitions, constants and decorators), except the router, which is the app
    (explorer.py calls boot() in its start-up hook, not on import)."""
    for module, path in ui_files().items():
        if module == "streamlit_app":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        calls = [node.lineno for node in tree.body if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call)]
        assert calls == [], f"{module} calls something at import (lines {calls})"


def test_the_layout_states_the_dashboards_layers_in_this_order():
    layout = (ROOT / "docs" / "layout.md").read_text(encoding="utf-8")
    order = " < ".join(f"`{name}`" for name in DASHBOARD_LAYERS) + " < `streamlit_app`"
    assert "Inside the dashboard, one way too: " + order + "." in layout


def test_the_ui_check_catches_a_reach_into_the_library(tmp_path, monkeypatch):
    """The public-names check fails on what the dashboard used to do (a private engine function,
    a module inside a sub-package), and passes the public forms."""
    library = module_names(ROOT / "gradcam")
    packages = {name for name, path in library.items() if path.name == "__init__.py"}
    page = tmp_path / "page.py"
    page.write_text("from gradcam.engine.cam import heatmap\nfrom gradcam.zoo import catalog\n"
                    "from gradcam.engine import _private\nimport gradcam\nfrom gradcam.engine import heatmap\n")
    verdicts = [source in packages and not (name and (is_private(name) or f"{source}.{name}" in library))
                for source, name, _ in imports_of("page", page, library)]
    assert verdicts == [False, False, False, True, True]
