"""`driftd` command line (typer)."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Optional

import typer

from driftd.server.config import load_settings

app = typer.Typer(name="driftd", help="Drift monitoring for ML models in production.", no_args_is_help=True,
                  add_completion=False, pretty_exceptions_enable=False)


@app.callback()
def _root() -> None:
    """driftd: compare live model traffic with versioned baselines, raise alarms, stream them."""


@app.command()
def serve(
    config: Optional[Path] = typer.Option(None, "--config", help="TOML settings file (also DRIFTD_CONFIG_FILE)."),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="Directory of the embedded SQLite store [./driftd-data]."),
    host: Optional[str] = typer.Option(None, "--host", help="Address to bind [127.0.0.1]."),
    port: Optional[int] = typer.Option(None, "--port", "--grpc-port", help="gRPC port [50051]; 0 = any free port."),
    metrics_port: Optional[int] = typer.Option(None, "--metrics-port", help="Prometheus /metrics port [9464]; -1 = off."),
    grace_period: Optional[float] = typer.Option(None, "--grace-period", help="Seconds in-flight calls get on shutdown [10]."),
    log_level: Optional[str] = typer.Option(None, "--log-level", help="debug, info, warning or error [info]."),
    log_format: Optional[str] = typer.Option(None, "--log-format", help="json or console [json]."),
) -> None:
    """Serve the gRPC API (health, reflection, all driftd.v1 services) until SIGTERM / SIGINT."""
    from pydantic import ValidationError

    from driftd.server.logs import configure_logging

    try:
        settings = load_settings(config, data_dir=data_dir, host=host, grpc_port=port, metrics_port=metrics_port,
                                 grace_period_s=grace_period, log_level=log_level, log_format=log_format)
    except (ValidationError, FileNotFoundError, ValueError) as exc:
        typer.echo(f"driftd serve: invalid configuration: {exc}", err=True)
        raise typer.Exit(2) from None
    configure_logging(settings.log_level, settings.log_format)
    raise typer.Exit(asyncio.run(_serve(settings)))


async def _serve(settings) -> int:
    from driftd.server.app import build_server

    # Handlers first: a signal that arrives while the server starts still drains it cleanly.
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        server, port = await build_server(settings)
        await server.start()
    except OSError as exc:
        typer.echo(f"driftd serve: {exc}", err=True)
        return 1
    typer.echo(f"driftd serving gRPC on {settings.host}:{port} (metrics on port {server.metrics_port}); "
               "SIGTERM or Ctrl-C drains and stops", err=True)
    await stop.wait()
    await server.drain_and_stop()
    return 0


@app.command()
def demo(
    short: bool = typer.Option(False, "--short", help="Shorter phases (about 40 s in all), as the tests run it."),
    phase_seconds: Optional[float] = typer.Option(None, "--phase-seconds", help="Seconds per phase [12, or 5 with --short]."),
) -> None:
    """Self-contained run of the seed scenario: normal traffic, then injected drifts, alarms live."""
    from rich.console import Console

    from driftd.server.demo import Scenario, run_demo
    from driftd.server.logs import configure_logging

    configure_logging("warning", "console")
    sc = Scenario(phase_seconds=5.0, pane_seconds=1.0, pane_count=3, evaluation_seconds=0.5) if short else Scenario()
    if phase_seconds is not None:
        sc.phase_seconds = phase_seconds
    ok, _ = asyncio.run(run_demo(sc, Console()))
    raise typer.Exit(0 if ok else 1)


def _register_subcommands() -> None:
    from driftd.server.check_cli import check

    app.command("check", help="Batch drift check of a file against a reference file; non-zero exit on drift (CI gates).")(check)


_register_subcommands()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
