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
    alertmanager_url: Optional[str] = typer.Option(None, "--alertmanager-url",
                                                   help="Forward alarms to this Alertmanager (API v2), e.g. http://127.0.0.1:9093."),
) -> None:
    """Serve the gRPC API (health, reflection, all driftd.v1 services) until SIGTERM / SIGINT."""
    from pydantic import ValidationError

    from driftd.server.logs import configure_logging

    try:
        settings = load_settings(config, data_dir=data_dir, host=host, grpc_port=port, metrics_port=metrics_port,
                                 grace_period_s=grace_period, log_level=log_level, log_format=log_format,
                                 alertmanager_url=alertmanager_url)
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


@app.command()
def alarms(
    target: str = typer.Option("127.0.0.1:50051", "--target", envvar="DRIFTD_TARGET", help="driftd gRPC address."),
    follow: bool = typer.Option(False, "--follow", "-f", help="Stream alarm events live (resumes by itself after disconnects)."),
    after: Optional[int] = typer.Option(None, "--after", help="With --follow: replay events after this sequence first (0 = all retained)."),
    monitor: Optional[list[str]] = typer.Option(None, "--monitor", help="Only this monitor (repeatable)."),
    severity: Optional[list[str]] = typer.Option(None, "--severity", help="Only P1, P2 or P3 (repeatable)."),
    token: Optional[str] = typer.Option(None, "--token", envvar="DRIFTD_TOKEN", help="Bearer token."),
    json_output: bool = typer.Option(False, "--json", help="One JSON object per line."),
) -> None:
    """List current alarms, or with --follow print the live alarm event stream."""
    import grpc
    from google.protobuf import json_format

    from driftd.client.alarms import SEVERITIES, subscribe_alarms
    from driftd.v1 import alarm_pb2, alarm_pb2_grpc, monitor_pb2

    bad = [s for s in severity or [] if s not in SEVERITIES]
    if bad:
        typer.echo(f"driftd alarms: unknown severity {bad[0]!r}; use P1, P2 or P3", err=True)
        raise typer.Exit(2)
    metadata = [("authorization", f"Bearer {token}")] if token else None
    channel = grpc.insecure_channel(target)

    def state_name(value: int) -> str:
        return alarm_pb2.AlarmState.Name(value).removeprefix("ALARM_STATE_").lower()

    try:
        if not follow:
            parents = [m if m.startswith("monitors/") else f"monitors/{m}" for m in monitor or []] or ["monitors/-"]
            for parent in parents:
                resp = alarm_pb2_grpc.AlarmServiceStub(channel).ListAlarms(alarm_pb2.ListAlarmsRequest(
                    parent=parent, severities=[SEVERITIES[s] for s in severity or []], page_size=1000), metadata=metadata, timeout=30)
                for a in resp.alarms:
                    if json_output:
                        typer.echo(json_format.MessageToJson(a, indent=None))
                    else:
                        typer.echo(f"{monitor_pb2.Severity.Name(a.severity).removeprefix('SEVERITY_')} {a.name} {state_name(a.state)} "
                                   f"value={a.value:.4g} threshold={a.threshold:.4g}" + (" acknowledged" if a.acknowledged else ""))
            return
        for e in subscribe_alarms(channel, start_after=after, monitor=monitor, severity=severity, metadata=metadata):
            if json_output:
                typer.echo(json_format.MessageToJson(e, indent=None))
                continue
            sev = monitor_pb2.Severity.Name(e.severity).removeprefix("SEVERITY_")
            when = e.event_time.ToDatetime().strftime("%Y-%m-%dT%H:%M:%SZ")
            labels = ",".join(f"{k}={v}" for k, v in sorted(e.labels.items()))
            typer.echo(f"#{e.sequence} {when} {sev} {e.monitor} {e.rule_id}{'{' + labels + '}' if labels else ''} "
                       f"{state_name(e.previous_state)} -> {state_name(e.state)}: {e.summary}")
            if e.runbook and e.state == alarm_pb2.ALARM_STATE_FIRING:
                typer.echo(f"    runbook: {e.runbook}")
    except grpc.RpcError as exc:
        typer.echo(f"driftd alarms: {exc.code().name}: {exc.details()}", err=True)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        pass
    finally:
        channel.close()


def _register_subcommands() -> None:
    from driftd.server.check_cli import check

    from driftd.server.remote_cli import baseline_app, snapshot
    from driftd.server.export_cli import export_app

    app.command("check", help="Batch drift check of a file against a reference file; non-zero exit on drift (CI gates).")(check)
    app.add_typer(baseline_app, name="baseline")
    app.command("snapshot")(snapshot)
    app.add_typer(export_app, name="export")


_register_subcommands()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
