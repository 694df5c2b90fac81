"""Packaging and layering rules that keep the layout honest (design §4)."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _package_dirs(folder: str, import_prefix: str) -> set[str]:
    base = ROOT / folder
    return {
        ".".join([import_prefix, *init.parent.relative_to(base).parts])
        for init in base.rglob("__init__.py")
        if "__pycache__" not in init.parts
    }


def test_every_package_is_listed_in_pyproject():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = _package_dirs("server", "driftd.server") | _package_dirs("kernels", "driftd.kernels")
    assert found - listed == set(), "add these to [tool.setuptools] packages in pyproject.toml"
    assert listed - found == set(), "pyproject lists packages that do not exist"


def _imports(folder: str) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for path in (ROOT / folder).rglob("*.py"):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
        out[str(path.relative_to(ROOT))] = names
    return out


def test_kernels_import_nothing_of_driftd():
    for path, names in _imports("kernels").items():
        bad = {n for n in names if n.startswith("driftd") and not n.startswith("driftd.kernels")}
        assert not bad, f"{path} imports {bad}"


def test_domain_never_imports_grpc_or_generated_code():
    for path, names in _imports("server/domain").items():
        bad = {n for n in names if n.split(".")[0] in {"grpc", "grpc_status", "google"} or n.startswith(("driftd.v1", "driftd.server.transport", "driftd.server.store", "driftd.server.app"))}
        assert not bad, f"{path} imports {bad}"


def test_store_imports_only_domain():
    for path, names in _imports("server/store").items():
        bad = {n for n in names if n.split(".")[0] == "grpc" or n.startswith(("driftd.v1", "driftd.server.transport", "driftd.server.app"))}
        assert not bad, f"{path} imports {bad}"


def test_client_has_no_torch_dependency():
    client = tomllib.loads((ROOT / "clients/python/pyproject.toml").read_text())
    assert not any(dep.startswith("torch") for dep in client["project"]["dependencies"])
    for path, names in _imports("clients/python/src").items():
        assert not {n for n in names if n.split(".")[0] in {"torch", "triton"} or n.startswith("driftd.server")}, path


def test_torch_is_pinned_exactly():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert "torch==2.13.0" in deps
