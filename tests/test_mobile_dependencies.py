"""The mobile build (`flet build apk|ipa`) gets only client packages, and they are enough.

`flet build` installs `[project].dependencies` with pip on the build machine, with
`platform.system()` patched to "Android"/"iOS" (serious_python's sitecustomize), so markers on
`platform_system` decide what reaches the app. These tests evaluate those markers for Android
and iOS, and check the result against what the client really imports from `main.py`
(docs/packaging.md).
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
PROJECT_PACKAGES = {"app", "main"}
# Imported only by the API, the CLI's server commands or the desktop extra: none has a mobile wheel.
SERVER_ONLY_MODULES = (
    "fastapi", "uvicorn", "alembic", "psycopg", "psycopg_binary", "starlette", "multipart",
    "python_multipart", "sqlcipher3", "flet_web", "flet_desktop", "server",
)
SERVER_ONLY_DISTRIBUTIONS = {
    "fastapi", "uvicorn", "alembic", "psycopg", "psycopg-binary", "starlette",
    "python-multipart", "sqlcipher3", "flet-web", "flet-desktop",
}
MOBILE_SYSTEMS = ("Android", "iOS")


def target_environment(system: str) -> dict[str, str]:
    """The marker environment pip sees under serious_python's sitecustomize for `system`."""
    env = dict(default_environment())
    env.update(platform_system=system, python_version="3.11", python_full_version="3.11.0")
    return env


def applies(requirement: Requirement, env: dict[str, str], extras: set[str]) -> bool:
    if requirement.marker is None:
        return True
    return any(requirement.marker.evaluate({**env, "extra": extra}) for extra in extras or {""})


def mobile_requirements(system: str) -> list[Requirement]:
    """The `[project].dependencies` (and `[tool.flet.<system>].dependencies`) that pip installs
    for `system` in a `flet build`."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    env = target_environment(system)
    chosen = [Requirement(text) for text in project["dependencies"]]
    # `[tool.flet.<platform>].dependencies` are appended by `flet build`; none for mobile now.
    flet = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["flet"]
    chosen += [Requirement(t) for t in flet.get(system.lower(), {}).get("dependencies", [])]
    return [req for req in chosen if applies(req, env, set())]


def installed_closure(system: str) -> set[str]:
    """Every distribution pip would install for `system`: the mobile list and what it requires,
    read from the installed distributions' metadata (the same pinned versions as uv.lock)."""
    env = target_environment(system)
    todo = [(canonicalize_name(r.name), set(r.extras)) for r in mobile_requirements(system)]
    seen: set[tuple[str, frozenset[str]]] = set()
    names: set[str] = set()
    while todo:
        name, extras = todo.pop()
        if (name, frozenset(extras)) in seen:
            continue
        seen.add((name, frozenset(extras)))
        names.add(name)
        for text in metadata.distribution(name).requires or []:
            req = Requirement(text)
            if applies(req, env, extras):
                todo.append((canonicalize_name(req.name), set(req.extras)))
    return names


def module_file(dotted: str) -> Path | None:
    """The project file for a dotted module name, or None when it is not a project module."""
    if dotted.split(".")[0] not in PROJECT_PACKAGES:
        return None
    base = ROOT.joinpath(*dotted.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def is_type_checking(node: ast.If) -> bool:
    return "TYPE_CHECKING" in ast.unparse(node.test)


def guarded(handlers: list[ast.ExceptHandler]) -> bool:
    """A try whose failure path handles a missing module: its imports are optional."""
    names = {ast.unparse(h.type) for h in handlers if h.type is not None}
    return any(n in text for text in names for n in ("ImportError", "ModuleNotFoundError"))


def imports_in(tree: ast.AST, package: str) -> Iterator[tuple[str, bool]]:
    """(dotted name, optional) of every import in a module, in functions too (they may run at
    any time after start); `if TYPE_CHECKING` blocks are skipped."""

    def walk(node: ast.AST, optional: bool) -> Iterator[tuple[str, bool]]:
        if isinstance(node, ast.If) and is_type_checking(node):
            yield from (i for child in node.orelse for i in walk(child, optional))
            return
        if isinstance(node, ast.Try):
            inner = optional or guarded(node.handlers)
            for child in node.body:
                yield from walk(child, inner)
            for child in [*node.handlers, *node.orelse, *node.finalbody]:
                yield from walk(child, optional)
            return
        if isinstance(node, ast.Import):
            yield from ((alias.name, optional) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            yield base, optional
            yield from ((f"{base}.{alias.name}", optional) for alias in node.names)
        for child in ast.iter_child_nodes(node):
            yield from walk(child, optional)

    yield from walk(tree, False)


def client_imports() -> tuple[set[str], set[str], set[str]]:
    """From main.py, following project imports: (project modules reached, third-party top-level
    modules needed, third-party top-level modules imported only optionally)."""
    todo, reached = ["main"], set()
    needed: set[str] = set()
    optional_only: set[str] = set()
    while todo:
        dotted = todo.pop()
        path = module_file(dotted)
        if path is None or dotted in reached:
            continue
        reached.add(dotted)
        parts = dotted.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts))]  # parent packages run first
        package = dotted if path.name == "__init__.py" else ".".join(parts[:-1])
        for name, optional in imports_in(ast.parse(path.read_text(encoding="utf-8")), package):
            top = name.split(".")[0]
            if top in PROJECT_PACKAGES:
                todo.append(name)
            elif top and top not in sys.stdlib_module_names and top != "__future__":
                (optional_only if optional else needed).add(top)
    return reached, needed, optional_only - needed


@pytest.mark.parametrize("system", MOBILE_SYSTEMS)
def test_mobile_build_installs_no_server_package(system: str) -> None:
    closure = installed_closure(system)
    assert closure & SERVER_ONLY_DISTRIBUTIONS == set()
    assert {"flet", "cryptography", "sqlmodel", "httpx"} <= closure  # the list is not empty
    # On this (Linux) machine the same markers keep the server packages for the API and demo.
    here = {canonicalize_name(r.name) for r in mobile_requirements("Linux")}
    assert {"fastapi", "uvicorn", "alembic", "psycopg", "flet-web"} <= here


@pytest.mark.parametrize("system", MOBILE_SYSTEMS)
def test_mobile_list_covers_every_module_the_client_imports(system: str) -> None:
    reached, needed, _optional = client_imports()
    assert {"main", "app.views.app", "app.sync.transport", "app.storage"} <= reached
    providers = metadata.packages_distributions()
    closure = installed_closure(system)
    uncovered = {
        module: providers.get(module)
        for module in needed
        if not {canonicalize_name(d) for d in providers.get(module, [])} & closure
    }
    assert uncovered == {}, f"client imports not in the {system} build: {uncovered}"


def test_client_walk_reaches_no_server_module() -> None:
    reached, needed, optional = client_imports()
    assert not [m for m in reached if m.startswith(("app.cli.server", "app.demo"))]
    assert needed & set(SERVER_ONLY_MODULES) == set()
    assert "sqlcipher3" in optional  # the desktop layer, imported only where it exists


REFUSING_IMPORT = """
import importlib.abc, sys
REFUSED = set(sys.argv[1].split(","))

class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in REFUSED:
            raise ModuleNotFoundError(f"server-only module imported by the client: {name}")
        return None

sys.meta_path.insert(0, Refuse())
sys.argv = ["main.py"]
import runpy
main = runpy.run_path("main.py", run_name="commune_mobile_entry")
make_main, data_folder = main["make_main"], main["data_folder"]
folder = data_folder()
start = make_main(folder)
import app.views.app, app.views.screens, app.sync.transport, app.sync.scheduler
import app.storage.services, app.reports

# Start the app as `ft.run` would, on a stand-in page: the first-run screen with its ward list.
import asyncio
from tests.views.fake_page import FakePage, texts

async def first_screen():
    page = FakePage(width=800)
    page.services = []
    await start(page)
    for _ in range(100):  # the ward list loads off the UI loop: at most ~10 s
        shown = texts(page.views[-1]) if page.views else []
        if any(text.startswith("Đã chọn: ") for text in shown):
            break
        await asyncio.sleep(0.1)
    for task in page.tasks:
        task.cancel()
    return shown

shown = asyncio.run(first_screen())
loaded = sorted(m for m in sys.modules if m.split(".")[0] in REFUSED)
print("loaded:", ",".join(loaded))
print("started:", callable(start), folder)
print("screen:", " | ".join(shown))
"""


def test_client_entry_imports_without_server_packages(tmp_path: Path) -> None:
    """main.py imports, and starts the app up to its first-run screen (ward list loaded), with
    every server-only module refused; the screens, sync, storage and reports import too."""
    env = {**os.environ, "COMMUNE_DATA_DIR": str(tmp_path / "data")}
    done = subprocess.run(
        [sys.executable, "-c", REFUSING_IMPORT, ",".join(SERVER_ONLY_MODULES)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "loaded: \n" in done.stdout
    assert f"started: True {tmp_path / 'data'}" in done.stdout
    assert "Bắt đầu sử dụng trên thiết bị này" in done.stdout  # the first-run screen
    assert "Đã chọn: Phường Ba Đình" in done.stdout  # with its ward list loaded


def test_refusing_hook_does_refuse(tmp_path: Path) -> None:
    """The hook above really stops a server import (else the test could pass on nothing)."""
    probe = REFUSING_IMPORT.replace("import runpy", "import fastapi\nimport runpy")
    done = subprocess.run(
        [sys.executable, "-c", probe, ",".join(SERVER_ONLY_MODULES)],
        cwd=ROOT, env={**os.environ, "COMMUNE_DATA_DIR": str(tmp_path)},
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode != 0
    assert "server-only module imported by the client: fastapi" in done.stderr
