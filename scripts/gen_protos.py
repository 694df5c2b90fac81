#!/usr/bin/env python3
"""Regenerate the Python stubs of proto/driftd/v1 into clients/python/src/driftd/v1.

The one way stubs are made; tests/test_protos.py fails when the committed stubs differ from what
this script produces. Usage: `python scripts/gen_protos.py [--out DIR]` (needs grpcio-tools, pinned
in pyproject's dev extra so the output is byte-for-byte reproducible).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "proto"
THIRD_PARTY = ROOT / "third_party" / "googleapis"
DEFAULT_OUT = ROOT / "clients" / "python" / "src"
PACKAGE_DIR = Path("driftd") / "v1"
INIT_TEXT = '"""Generated driftd v1 protocol stubs (scripts/gen_protos.py). Do not edit."""\n'


def generate(out_root: Path) -> list[Path]:
    """Write stubs under out_root/driftd/v1 and return the files written (sorted)."""
    from grpc_tools import protoc  # imported late: only the generator needs grpcio-tools

    import grpc_tools

    protos = sorted(str(p.relative_to(PROTO_ROOT)) for p in (PROTO_ROOT / PACKAGE_DIR).glob("*.proto"))
    well_known = Path(grpc_tools.__file__).parent / "_proto"
    with tempfile.TemporaryDirectory() as tmp:
        args = [
            "protoc",
            f"-I{PROTO_ROOT}",
            f"-I{THIRD_PARTY}",
            f"-I{well_known}",
            f"--python_out={tmp}",
            f"--pyi_out={tmp}",
            f"--grpc_python_out={tmp}",
            *protos,
        ]
        if protoc.main(args) != 0:
            raise SystemExit("protoc failed")
        target = out_root / PACKAGE_DIR
        if target.exists():
            for old in target.glob("*_pb2*.py*"):
                old.unlink()
        target.mkdir(parents=True, exist_ok=True)
        for produced in sorted((Path(tmp) / PACKAGE_DIR).iterdir()):
            shutil.copyfile(produced, target / produced.name)
        (target / "__init__.py").write_text(INIT_TEXT)
    return sorted(target.iterdir())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="root of the generated package tree")
    ns = parser.parse_args(argv)
    for path in generate(ns.out):
        print(path.relative_to(ns.out) if path.is_relative_to(ns.out) else path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
