"""The code's layout holds: folders a newcomer can read, data flowing one way, tests on public names only.

Read from the source's module-level imports (ast), so a change that breaks the layout fails here by name.
"""

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("spaces", "trainables", "search")  # each imports only the ones before it
# search's rooms, each importing only from the rooms before it; compat imports none; the commands (the modules
# directly in search/) import from any room
ROOMS = ("storage", "settings", "steer", "results", "ticket", "driver")


def _module_imports(path: Path, everywhere: bool = False) -> set[str]:
    """The project modules `path` imports at module level (or `everywhere`, functions too); a name imported from
    `search` counts as `search.NAME`, one imported from another package as the package; imports under
    `if TYPE_CHECKING:` do not count."""
    tree = ast.parse(path.read_text())
    nodes = []
    for node in tree.body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        nodes += list(ast.walk(node)) if everywhere or isinstance(node, (ast.If, ast.Try)) else [node]
    found = set()
    for inner in nodes:
        if isinstance(inner, ast.ImportFrom) and inner.module == "search" and inner.level == 0:
            found.update(f"search.{alias.name}" for alias in inner.names)  # `from search import compat`
        elif isinstance(inner, ast.ImportFrom) and inner.module and inner.level == 0:
            found.add(inner.module)
        elif isinstance(inner, ast.Import):
            found.update(alias.name for alias in inner.names)
    return {name for name in found if name.split(".")[0] in PACKAGES}


def _sources(package: str) -> list[Path]:
    return sorted((REPO / package).rglob("*.py"))


def test_no_folder_holds_more_than_twelve_modules():
    for package in PACKAGES:
        for folder in {p.parent for p in _sources(package)}:
            modules = list(folder.glob("*.py"))
            assert len(modules) <= 12, f"{folder.relative_to(REPO)} holds {len(modules)} modules"


def test_data_flows_one_way_between_the_packages():
    for rank, package in enumerate(PACKAGES):
        for path in _sources(package):
            above = {m for m in _module_imports(path) if m.split(".")[0] in PACKAGES[rank + 1:]}
            assert not above, f"{path.relative_to(REPO)} imports {sorted(above)}"


def test_search_s_rooms_import_only_from_the_rooms_before_them():
    for path in _sources("search"):
        parts = path.relative_to(REPO / "search").parts
        if len(parts) == 1:
            if path.name == "compat.py":
                assert not {m for m in _module_imports(path) if m.startswith("search")}, "compat imports search"
            continue  # the commands and the package's lazy names
        room = ROOMS.index(parts[0])
        for module in _module_imports(path):
            pieces = module.split(".")
            if pieces[0] != "search" or module == "search.compat":
                continue
            assert len(pieces) >= 2 and pieces[1] in ROOMS, f"{path.relative_to(REPO)} imports {module}, not a room's"
            assert ROOMS.index(pieces[1]) <= room, f"{path.relative_to(REPO)} imports {module}, a room after its own"


@pytest.mark.parametrize("everywhere", [False, True], ids=["module-level", "function-level too"])
def test_the_imports_have_no_cycle(everywhere):
    graph = {}
    for package in PACKAGES:
        for path in _sources(package):
            name = ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
            graph[name] = _module_imports(path, everywhere)
    graph = {name: {m for m in deps if m in graph and m != name and m not in PACKAGES} for name, deps in graph.items()}
    state: dict[str, int] = {}

    def visit(name: str, path: list[str]) -> None:
        state[name] = 1
        for dep in graph[name]:
            assert state.get(dep) != 1, f"an import cycle: {' -> '.join(path + [dep])}"
            if dep not in state:
                visit(dep, path + [dep])
        state[name] = 2

    for name in graph:
        if name not in state:
            visit(name, [name])


def test_no_test_imports_a_private_module():
    for path in sorted((REPO / "tests").glob("*.py")):
        for module in _module_imports(path, everywhere=True):
            assert not any(part.startswith("_") for part in module.split(".")), f"{path.name} imports {module}"



@pytest.mark.parametrize("package", PACKAGES)
def test_each_package_s_public_names_load_lazily_and_are_what_type_checkers_see(package):
    """One helper (spaces._lazy) makes each package's names; the TYPE_CHECKING block imports exactly them."""
    import importlib

    module = importlib.import_module(package)
    tree = ast.parse((REPO / package / "__init__.py").read_text())
    typed = {alias.asname or alias.name for node in tree.body if isinstance(node, ast.If)
             and "TYPE_CHECKING" in ast.unparse(node.test) for sub in ast.walk(node)
             if isinstance(sub, ast.ImportFrom) for alias in sub.names}
    assert typed == set(module.__all__)
    assert module.__all__ == sorted(module.__all__) and set(module.__all__) <= set(dir(module))
    for name in ("UsageError", "TrialSettings", "RunConfig"):
        if name in module.__all__:
            assert getattr(module, name).__name__ == name
