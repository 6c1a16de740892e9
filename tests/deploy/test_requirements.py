"""The two locks: requirements.txt is what runs (the Docker image installs only it),
requirements-dev.txt adds what only the tests and benchmarks need. localstripe is GPL-3.0 and
must never ship; a package the code imports must never be test-only.

Read against the installed distributions' metadata (the test venv has both files installed)."""

from __future__ import annotations

import ast
import re
import sys
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
# Imported only by tests/ and benchmarks/ (or brought in only by those): never in production.
TEST_ONLY = {"pytest", "pytest-timeout", "moto", "localstripe", "mongomock", "dnslib", "trustme", "check-jsonschema",
             "responses"}
INSTALLER = {"pip", "setuptools", "wheel"}    # come with every venv; pip freeze leaves them out


def pins(name: str) -> dict[str, str]:
    """canonical name -> pinned version of one lock file (its own lines, not its -r includes)."""
    found = {}
    for line in (ROOT / name).read_text().splitlines():
        line = line.split("#")[0].strip()
        if line and not line.startswith("-"):
            requirement = Requirement(line)
            assert len(requirement.specifier) == 1 and next(iter(requirement.specifier)).operator == "==", \
                f"{name}: {line} is not pinned with =="
            found[canonicalize_name(requirement.name)] = str(next(iter(requirement.specifier)).version)
    return found


PROD, DEV = pins("requirements.txt"), pins("requirements-dev.txt")


def imported_modules(*folders: str) -> dict[str, str]:
    """Top-level module -> a file importing it, for every absolute import under the folders."""
    found: dict[str, str] = {}
    for folder in folders:
        for path in sorted((ROOT / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                    [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level else []
                for name in names:
                    found.setdefault(name.split(".")[0], str(path.relative_to(ROOT)))
    return found


def third_party(modules: dict[str, str], local: set[str]) -> dict[str, str]:
    return {m: where for m, where in modules.items() if m not in sys.stdlib_module_names and m not in local}


def distributions_of(module: str) -> set[str]:
    return {canonicalize_name(d) for d in metadata.packages_distributions().get(module, [])}


def dependencies(name: str, extras: tuple[str, ...] = ()) -> set[tuple[str, tuple[str, ...]]]:
    """(name, extras) this installed distribution requires on this platform, with those extras."""
    needed = set()
    for line in metadata.distribution(name).requires or []:
        requirement = Requirement(line)
        marker = requirement.marker
        if marker is None or any(marker.evaluate({"extra": e}) for e in ("", *extras)):
            needed.add((canonicalize_name(requirement.name), tuple(sorted(requirement.extras))))
    return needed


def test_the_dev_lock_extends_the_production_lock_and_pins_nothing_twice():
    lines = [l.strip() for l in (ROOT / "requirements-dev.txt").read_text().splitlines() if l.strip()]
    assert "-r requirements.txt" in lines
    assert not PROD.keys() & DEV.keys(), f"pinned in both files: {sorted(PROD.keys() & DEV.keys())}"


def test_no_test_only_package_is_in_the_production_lock():
    assert not TEST_ONLY & PROD.keys(), f"test-only packages in requirements.txt: {sorted(TEST_ONLY & PROD.keys())}"
    assert TEST_ONLY <= DEV.keys(), f"not in requirements-dev.txt: {sorted(TEST_ONLY - DEV.keys())}"


def test_every_import_of_the_running_code_comes_from_the_production_lock():
    local = {p.name for p in (ROOT / "plugins").iterdir()} | {p.stem for p in (ROOT / "plugins").glob("*.py")}
    modules = third_party(imported_modules("plugins", "dags", "scripts"), local)
    missing = {m: where for m, where in modules.items() if not distributions_of(m) & PROD.keys()}
    assert not missing, f"imported by the running code but not in requirements.txt: {missing}"


def test_the_production_lock_is_closed_under_its_own_requirements():
    """What a production package needs (extras included) is pinned in requirements.txt itself:
    installing it alone pulls nothing unpinned and nothing from the dev lock."""
    seen: set[tuple[str, tuple[str, ...]]] = set()
    todo = [(name, ()) for name in PROD]
    missing: dict[str, str] = {}
    while todo:
        item = todo.pop()
        if item in seen:
            continue
        seen.add(item)
        for dependency in dependencies(*item):
            if dependency[0] in INSTALLER:
                continue
            if dependency[0] not in PROD:
                missing.setdefault(dependency[0], item[0])
            else:
                todo.append(dependency)
    assert not missing, f"needed by production packages but not in requirements.txt (needed by): {missing}"


def test_the_tests_imports_come_from_the_two_locks():
    local = {p.stem for p in (ROOT / "tests").glob("*.py")} | {p.name for p in (ROOT / "tests").iterdir() if p.is_dir()}
    local |= {p.stem for p in (ROOT / "benchmarks").glob("*.py")} | {"maintenance"}
    modules = third_party(imported_modules("tests", "benchmarks"), local)
    missing = {m: where for m, where in modules.items() if not distributions_of(m) & (PROD.keys() | DEV.keys())}
    assert not missing, f"imported by tests/benchmarks but in neither lock: {missing}"


def test_the_image_installs_only_the_production_lock_and_make_installs_both():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "COPY requirements.txt " in dockerfile and "requirements-dev" not in dockerfile
    makefile = (ROOT / "Makefile").read_text()
    stamp = re.search(r"^\$\(VENV\)/\.installed:(.*)$", makefile, re.M).group(1).split()
    assert sorted(stamp) == ["requirements-dev.txt", "requirements.txt"]
    assert "-r requirements-dev.txt" in makefile
