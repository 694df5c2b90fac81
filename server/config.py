"""Settings: defaults that run out of the box, overridden by a TOML file (`--config` or
DRIFTD_CONFIG_FILE), then `DRIFTD_*` environment variables, then command-line flags.

| setting | env | default |
|---|---|---|
| data_dir | DRIFTD_DATA_DIR | ./driftd-data (SQLite database `driftd.sqlite3` inside) |
| host | DRIFTD_HOST | 127.0.0.1 (use 0.0.0.0 / [::] to serve other machines) |
| grpc_port | DRIFTD_GRPC_PORT | 50051 (0 = any free port) |
| metrics_port | DRIFTD_METRICS_PORT | 9464 (0 = any free port, -1 = off) |
| max_message_mb | DRIFTD_MAX_MESSAGE_MB | 64 (gRPC message limit) |
| max_batch_mb | DRIFTD_MAX_BATCH_MB | 32 (larger batches are refused per batch) |
| engine_threads | DRIFTD_ENGINE_THREADS | 2 |
| torch_threads | DRIFTD_TORCH_THREADS | 1 |
| calibration_threads | DRIFTD_CALIBRATION_THREADS | 1 (threads for a baseline build's KS / W1 calibration) |
| grace_period_s | DRIFTD_GRACE_PERIOD_S | 10 |
| auth_tokens | DRIFTD_AUTH_TOKENS | empty = no auth; comma-separated bearer tokens |
| tls_cert_file / tls_key_file / tls_client_ca_file | DRIFTD_TLS_* | empty = plaintext; client CA = mTLS |
| snapshot_retention | DRIFTD_SNAPSHOT_RETENTION | 10000 snapshots per monitor |
| alarm_event_retention | DRIFTD_ALARM_EVENT_RETENTION | 1000000 events |
| metrics_max_features | DRIFTD_METRICS_MAX_FEATURES | 500 per-feature series per monitor (most drifted first) |
| metrics_feature_statistics | DRIFTD_METRICS_FEATURE_STATISTICS | psi,js,ks,w1,nan_rate,out_of_range_rate,outlier_rate,unseen_rate,missing_rate |
| alertmanager_url | DRIFTD_ALERTMANAGER_URL | empty = off; e.g. http://127.0.0.1:9093 (API v2) |
| alertmanager_resend_s | DRIFTD_ALERTMANAGER_RESEND_S | 60 (firing alerts are re-sent this often) |
| gc_freeze | DRIFTD_GC_FREEZE | true: after warm-ups, collect once and gc.freeze() the long-lived heap (server/heap.py) |
| log_level | DRIFTD_LOG_LEVEL | info |
| log_format | DRIFTD_LOG_FORMAT | json (or console) |
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

# Set by load_settings for the duration of one Settings() construction.
_config_file: Path | None = None


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DRIFTD_", extra="forbid")

    data_dir: Path = Path("driftd-data")
    host: str = "127.0.0.1"
    grpc_port: int = Field(50051, ge=0, le=65535)
    metrics_port: int = Field(9464, ge=-1, le=65535)
    # gRPC's default 4 MiB limit is raised deliberately: batches of 256 KiB - 4 MiB amortise the
    # per-message cost, and an embedding batch easily exceeds 4 MiB. Bigger messages are refused
    # with RESOURCE_EXHAUSTED before any decoding.
    max_message_mb: int = Field(64, ge=1, le=1024)
    # Largest single batch accepted (bigger ones are refused per batch with INVALID_ARGUMENT, the
    # stream stays open); must stay below max_message_mb, past which gRPC itself ends the call.
    max_batch_mb: int = Field(32, ge=1, le=1024)
    # Threads for torch work (window updates, evaluations, baseline builds).
    engine_threads: int = Field(2, ge=1, le=64)
    # torch intra-op threads per engine thread. 1 by default: each monitor's work is already one
    # executor thread, and oversubscribing a small machine's cores (gRPC, the event loop and torch's
    # pool fighting) slowed window updates ~30x in measurements on a 2-core machine.
    torch_threads: int = Field(1, ge=1, le=256)
    # Threads for a baseline build's per-shard KS / W1 calibration. 1 by default for the same reason:
    # a build already runs on an engine thread beside the others (`driftd check` uses up to 4).
    calibration_threads: int = Field(1, ge=1, le=64)
    grace_period_s: float = Field(10.0, ge=0.0, le=600.0)
    auth_tokens: Annotated[list[str], NoDecode] = Field(default_factory=list)
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    tls_client_ca_file: Path | None = None
    snapshot_retention: int = Field(10_000, ge=1)
    alarm_event_retention: int = Field(1_000_000, ge=1)
    metrics_max_features: int = Field(500, ge=0, le=100_000)
    metrics_feature_statistics: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["psi", "js", "ks", "w1", "nan_rate", "out_of_range_rate", "outlier_rate", "unseen_rate", "missing_rate"])
    alertmanager_url: str | None = None
    alertmanager_resend_s: float = Field(60.0, gt=0.0, le=3600.0)
    # Full garbage collections over the ~500k long-lived objects of a warm process pause the event
    # loop for hundreds of ms; freezing them after warm-ups keeps those pauses short (server/heap.py).
    gc_freeze: bool = True
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["json", "console"] = "json"

    @field_validator("auth_tokens", "metrics_feature_statistics", mode="before")
    @classmethod
    def _split_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [t.strip() for t in value.split(",") if t.strip()]
        return value

    @field_validator("metrics_feature_statistics")
    @classmethod
    def _known_feature_statistics(cls, value: list[str]) -> list[str]:
        from driftd.server.domain.monitor import SELECTOR_METRICS

        known = sorted(m.removeprefix("feature_") for m, label in SELECTOR_METRICS.items() if label == "feature")
        unknown = [v for v in value if v not in known]
        if unknown:
            raise ValueError(f"unknown feature statistic {unknown[0]!r}; known: {', '.join(known)}")
        return value

    @field_validator("alertmanager_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"alertmanager_url must start with http:// or https://, got {value!r}")
        return value.rstrip("/")

    @field_validator("log_level", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: tuple[PydanticBaseSettingsSource, ...] = (init_settings, env_settings)
        if _config_file is not None:
            sources += (TomlConfigSettingsSource(settings_cls, toml_file=_config_file),)
        return sources

    @property
    def max_message_bytes(self) -> int:
        return self.max_message_mb * 1024 * 1024

    @property
    def max_batch_bytes(self) -> int:
        return min(self.max_batch_mb, self.max_message_mb) * 1024 * 1024

    @property
    def tls_enabled(self) -> bool:
        return self.tls_cert_file is not None


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Defaults < TOML file < DRIFTD_* env < overrides (flags; None values are ignored)."""
    global _config_file
    path = config_file or (Path(os.environ["DRIFTD_CONFIG_FILE"]) if os.environ.get("DRIFTD_CONFIG_FILE") else None)
    if path is not None and not Path(path).is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    _config_file = path
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    finally:
        _config_file = None
