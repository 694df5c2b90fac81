"""`driftd demo --short` as a user runs it: every injected drift detected, no false alarm."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_demo_short_mode_detects_every_drift():
    result = subprocess.run([sys.executable, "-m", "driftd.server.cli", "demo", "--short"], capture_output=True, text=True,
                            timeout=240, env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"})
    out = result.stdout
    assert result.returncode == 0, out[-3000:] + result.stderr[-3000:]
    assert "every injected drift detected, no false alarm" in out
    assert "false alarms in the normal phase: 0" in out
    for drift in ("mean shift", "variance change", "categorical share change", "embedding shift", "latency spike", "label-accuracy drop"):
        assert drift in out
    assert "not detected" not in out
    assert "Prometheus metrics on http://127.0.0.1:" in out
    assert re.search(r"/metrics: \d+ driftd series families, [1-9]\d* per-feature drift samples", out), out[-2000:]
    assert "Traceback" not in result.stderr and "never retrieved" not in result.stderr
