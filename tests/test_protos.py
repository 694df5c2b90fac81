"""The committed stubs are exactly what scripts/gen_protos.py produces, and buf lint is clean."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
COMMITTED = ROOT / "clients" / "python" / "src" / "driftd" / "v1"


def test_committed_stubs_are_fresh(tmp_path):
    subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_protos.py"), "--out", str(tmp_path)], check=True, capture_output=True)
    fresh = {p.name: p.read_bytes() for p in (tmp_path / "driftd" / "v1").iterdir()}
    committed = {p.name: p.read_bytes() for p in COMMITTED.iterdir() if p.is_file()}
    assert sorted(fresh) == sorted(committed), "stub files differ: run python scripts/gen_protos.py"
    stale = [name for name in fresh if fresh[name] != committed[name]]
    assert not stale, f"stale stubs {stale}: run python scripts/gen_protos.py and commit"


def test_buf_lint_clean():
    buf = shutil.which("buf") or str(Path(sys.executable).parent / "buf")
    if not Path(buf).exists():
        pytest.fail("buf not installed: pip install buf-bin (it is in the dev extra)")
    result = subprocess.run([buf, "lint"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_rpc_of_the_contract_exists():
    from driftd.v1 import alarm_pb2, baseline_pb2, ingest_pb2, monitor_pb2, snapshot_pb2

    rpcs = {
        (s.full_name, meth.name, meth.client_streaming, meth.server_streaming)
        for mod in (alarm_pb2, baseline_pb2, ingest_pb2, monitor_pb2, snapshot_pb2)
        for s in mod.DESCRIPTOR.services_by_name.values()
        for meth in s.methods
    }
    assert ("driftd.v1.IngestService", "StreamBatches", True, True) in rpcs
    assert ("driftd.v1.BaselineService", "CreateBaseline", True, False) in rpcs
    assert ("driftd.v1.SnapshotService", "WatchSnapshots", False, True) in rpcs
    assert ("driftd.v1.AlarmService", "SubscribeAlarms", False, True) in rpcs
    names = {r[1] for r in rpcs}
    assert {"CreateMonitor", "GetMonitor", "ListMonitors", "UpdateMonitor", "DeleteMonitor", "GetBaseline", "ListBaselines",
            "ActivateBaseline", "WriteBatch", "WriteLabels", "GetSnapshot", "ListSnapshots", "ListAlarms", "SilenceAlarm",
            "AcknowledgeAlarm"} <= names
