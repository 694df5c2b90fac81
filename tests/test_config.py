"""Settings precedence: defaults < TOML file < DRIFTD_* env < flags."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from driftd.server.config import load_settings


def test_defaults_work_out_of_the_box(monkeypatch):
    for key in ("DRIFTD_GRPC_PORT", "DRIFTD_CONFIG_FILE", "DRIFTD_DATA_DIR"):
        monkeypatch.delenv(key, raising=False)
    s = load_settings()
    assert s.grpc_port == 50051 and s.metrics_port == 9464 and str(s.data_dir) == "driftd-data"
    assert s.max_message_bytes == 64 * 1024 * 1024


def test_precedence(tmp_path, monkeypatch):
    cfg = tmp_path / "driftd.toml"
    cfg.write_text('grpc_port = 1111\nmetrics_port = 2222\nlog_level = "debug"\n')
    monkeypatch.delenv("DRIFTD_LOG_LEVEL", raising=False)
    monkeypatch.setenv("DRIFTD_METRICS_PORT", "3333")
    monkeypatch.setenv("DRIFTD_AUTH_TOKENS", "a, b")
    s = load_settings(cfg, grpc_port=None)
    assert (s.grpc_port, s.metrics_port, s.log_level, s.auth_tokens) == (1111, 3333, "debug", ["a", "b"])
    assert load_settings(cfg, metrics_port=4444).metrics_port == 4444


def test_invalid_values_are_refused(tmp_path):
    with pytest.raises(ValidationError):
        load_settings(grpc_port=70000)
    with pytest.raises(ValidationError):
        load_settings(calibration_threads=0)
    with pytest.raises(FileNotFoundError):
        load_settings(tmp_path / "missing.toml")
