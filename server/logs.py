"""Structured logs (structlog): JSON lines by default, with monitor / peer context bound by callers."""

from __future__ import annotations

import logging
import sys
from typing import TextIO

import structlog


def configure_logging(level: str = "info", fmt: str = "json", stream: TextIO | None = None) -> None:
    """JSON lines (or console) at `level` to `stream` (stderr by default)."""
    stream = stream or sys.stderr
    numeric = getattr(logging, level.upper(), logging.INFO)
    logging.basicConfig(stream=stream, level=numeric, format="%(message)s", force=True)
    renderer = structlog.processors.JSONRenderer() if fmt == "json" else structlog.dev.ConsoleRenderer(colors=False)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )


def get_logger(name: str = "driftd") -> structlog.typing.FilteringBoundLogger:
    return structlog.get_logger(name)
