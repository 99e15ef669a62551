"""The package's layers: each subpackage imports only from the layers below it, and nothing imports in a cycle.

The order is the one `course_lib/__init__.py` and docs/architecture.md give. The test reads every
module's import statements (top level and inside functions) with `ast`, so a lazy import inside a
function counts as much as one at the top.
"""

import ast
from collections import defaultdict
from pathlib import Path

import pytest

import course_lib

PACKAGE = Path(course_lib.__file__).resolve().parent
LAYERS = ["core", "data", "nn", "metrics", "training", "experiment", "latent", "course", "grading", "cli"]
RANK = {name: i for i, name in enumerate(LAYERS)}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    """ids of the nodes under `if TYPE_CHECKING:` (annotation-only imports, never executed)."""
    inside = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", getattr(node.test, "attr", None)) == "TYPE_CHECKING":
            for child in node.body:
                inside.update(id(n) for n in ast.walk(child))
    return inside


def imported_modules(path: Path, runtime_only: bool = False) -> set[str]:
    """course_lib modules that `path` imports, resolved to absolute names (relative imports included).
    runtime_only: leave out imports under `if TYPE_CHECKING:`, which never run (so cannot make a cycle)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    skipped = _type_checking_nodes(tree) if runtime_only else set()
    here = module_name(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    found = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("course_lib"))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if not module.startswith("course_lib"):
                continue
            found.add(module)
            # `from course_lib.x import y` may import the submodule course_lib.x.y
            for alias in node.names:
                candidate = f"{module}.{alias.name}"
                if (PACKAGE.parent / Path(*candidate.split("."))).with_suffix(".py").is_file() or (
                    PACKAGE.parent / Path(*candidate.split(".")) / "__init__.py"
                ).is_file():
                    found.add(candidate)
    return found


def layer_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}
GRAPH = {name: imported_modules(path) & set(MODULES) for name, path in MODULES.items()}
RUNTIME_GRAPH = {name: imported_modules(path, runtime_only=True) & set(MODULES) for name, path in MODULES.items()}


def test_every_subpackage_is_a_known_layer():
    subpackages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    assert subpackages == set(LAYERS), "add new subpackages to LAYERS (and docs/architecture.md)"
    top_level_modules = [p.name for p in PACKAGE.glob("*.py") if p.name not in ("__init__.py", "__main__.py")]
    assert top_level_modules == [], f"modules belong in a layer, not at the top: {top_level_modules}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_go_only_down_the_layers(module):
    own = layer_of(module)
    if module == "course_lib.__main__":  # `python -m course_lib`: the entry point, above every layer, runs the cli
        assert {layer_of(m) for m in GRAPH[module]} == {"cli"}
        return
    if own is None:  # course_lib/__init__.py imports nothing of the package
        assert GRAPH[module] == set()
        return
    upward = sorted(m for m in GRAPH[module] if layer_of(m) and RANK[layer_of(m)] > RANK[own])
    assert not upward, f"{module} (layer {own!r}) imports from higher layers: {upward}"


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A cycle of module imports, by depth-first search, or None."""
    WHITE, GREY, BLACK = 0, 1, 2
    colour = defaultdict(int)
    stack: list[str] = []

    def visit(node):
        colour[node] = GREY
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt == node or _is_parent_package(nxt, node):
                continue
            if colour[nxt] == GREY:
                return stack[stack.index(nxt) :] + [nxt]
            if colour[nxt] == WHITE:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        colour[node] = BLACK
        return None

    for node in sorted(graph):
        if colour[node] == WHITE:
            found = visit(node)
            if found:
                return found
    return None


def _is_parent_package(candidate: str, module: str) -> bool:
    """Importing a.b.c runs a/__init__ and a/b/__init__ first; a package __init__ re-exporting its
    own submodules is not a cycle."""
    return module.startswith(candidate + ".")


def test_no_import_cycles():
    graph = {m: {d for d in deps if not _is_parent_package(m, d)} for m, deps in RUNTIME_GRAPH.items()}
    assert find_cycle(graph) is None, f"import cycle: {' -> '.join(find_cycle(graph))}"


def test_the_checker_finds_an_upward_import_and_a_cycle():
    """The checks above are only worth something if they can fail."""
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    assert RANK["training"] > RANK["metrics"] > RANK["nn"] > RANK["core"]
