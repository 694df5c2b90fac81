"""`driftd baseline create --file` and `driftd snapshot` against a live server."""

from __future__ import annotations

import asyncio
import sys

import numpy as np
import pandas as pd

from driftd.v1 import monitor_pb2 as m, monitor_pb2_grpc


async def run(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "driftd.server.cli", *args,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    return proc.returncode, out.decode(), err.decode()


async def test_baseline_from_file_then_snapshot(served, tmp_path):
    mon = m.Monitor()
    mon.schema.numeric_features.add(name="a")
    mon.schema.categorical_features.add(name="plan", categories=["free", "pro"])
    mon.window.pane_duration.seconds = 3600
    await monitor_pb2_grpc.MonitorServiceStub(served.channel).CreateMonitor(m.CreateMonitorRequest(monitor_id="files", monitor=mon))
    rng = np.random.default_rng(0)
    path = tmp_path / "ref.parquet"
    pd.DataFrame({"a": rng.normal(size=3000), "plan": rng.choice(["free", "pro"], 3000)}).to_parquet(path)
    target = f"127.0.0.1:{served.port}"
    code, out, err = await run("baseline", "create", "--monitor", "files", "--file", str(path), "--id", "ref1", "--target", target)
    assert code == 0, err
    assert out.startswith("monitors/files/baselines/ref1 rows=3000 data_hash=") and "active=True" in out
    code, _, err = await run("baseline", "create", "--monitor", "files", "--file", str(tmp_path / "missing.csv"), "--target", target)
    assert code == 2 and "not found" in err and "Traceback" not in err
    code, _, err = await run("snapshot", "files", "--target", target)
    assert code == 1 and "NOT_FOUND" in err  # nothing evaluated yet
    await (await served.server.runtimes.get("files")).evaluate()
    code, out, err = await run("snapshot", "files", "--target", target)
    assert code == 0, err
    assert "monitors/files/snapshots/1" in out and "rows 0" in out
