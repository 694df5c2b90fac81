"""`driftd baseline create` and `driftd snapshot`: commands that talk to a running server."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

baseline_app = typer.Typer(help="Baselines of a running driftd.", no_args_is_help=True, add_completion=False)

TARGET = typer.Option("127.0.0.1:50051", "--target", envvar="DRIFTD_TARGET", help="driftd gRPC address.")
TOKEN = typer.Option(None, "--token", envvar="DRIFTD_TOKEN", help="Bearer token.")


def _fail(message: str, code: int = 2) -> None:
    typer.echo(message, err=True)
    raise typer.Exit(code)


@baseline_app.command("create")
def baseline_create(
    monitor: str = typer.Option(..., "--monitor", help="Monitor id."),
    file: Path = typer.Option(..., "--file", help="Reference data: .csv, .parquet or .npz (columns named as the schema)."),
    baseline_id: str = typer.Option("", "--id", help="Baseline id (default: generated)."),
    activate: bool = typer.Option(True, "--activate/--no-activate", help="Make it the active baseline."),
    model_id: str = typer.Option("", "--model-id"),
    git_commit: str = typer.Option("", "--git-commit"),
    target: str = TARGET,
    token: Optional[str] = TOKEN,
    rows_per_batch: int = typer.Option(20_000, "--rows-per-batch", help="Rows per streamed message."),
) -> None:
    """Stream a reference file into a new immutable baseline (progress bar on a terminal)."""
    import grpc
    from rich.progress import Progress

    from driftd.server.check_cli import InputError, category_lists, read_table, to_batch
    from driftd.server.transport.codec import encode_tensor, spec_from_proto
    from driftd.v1 import baseline_pb2, baseline_pb2_grpc, ingest_pb2, monitor_pb2, monitor_pb2_grpc

    name = monitor if monitor.startswith("monitors/") else f"monitors/{monitor}"
    metadata = [("authorization", f"Bearer {token}")] if token else None
    with grpc.insecure_channel(target, options=[("grpc.max_send_message_length", 64 << 20)]) as channel:
        try:
            proto = monitor_pb2_grpc.MonitorServiceStub(channel).GetMonitor(monitor_pb2.GetMonitorRequest(name=name),
                                                                           metadata=metadata, timeout=30).monitor
            schema = spec_from_proto(proto).schema
            table = read_table(file, "reference")
            batch = to_batch(table, schema, category_lists(table, schema), "reference")
        except InputError as exc:
            _fail(f"driftd baseline create: {exc}")
        except grpc.RpcError as exc:
            _fail(f"driftd baseline create: {exc.code().name}: {exc.details()}", 1)
        n = batch.n_rows

        def requests(progress, task):
            yield baseline_pb2.CreateBaselineRequest(header=baseline_pb2.BaselineHeader(
                parent=name, baseline_id=baseline_id, model_id=model_id, git_commit=git_commit, source=str(file), activate=activate))
            for start in range(0, n, rows_per_batch):
                part = batch.slice(start, start + rows_per_batch)
                b = ingest_pb2.Batch(monitor=name)
                for key in ("numeric", "categorical", "scores"):
                    value = getattr(part, key)
                    if value is not None:
                        getattr(b, key).CopyFrom(encode_tensor(value))
                for block, values in part.embeddings.items():
                    b.embeddings[block].CopyFrom(encode_tensor(values))
                yield baseline_pb2.CreateBaselineRequest(batch=b)
                progress.update(task, advance=part.n_rows)

        with Progress(transient=True, disable=not typer.get_text_stream("stderr").isatty()) as progress:
            task = progress.add_task(f"streaming {n} reference rows", total=n)
            try:
                created = baseline_pb2_grpc.BaselineServiceStub(channel).CreateBaseline(requests(progress, task), metadata=metadata,
                                                                                       timeout=3600).baseline
            except grpc.RpcError as exc:
                _fail(f"driftd baseline create: {exc.code().name}: {exc.details()}", 1)
    typer.echo(f"{created.name} rows={created.row_count} data_hash={created.data_hash} active={created.active}")


def snapshot(
    monitor: str = typer.Argument(..., help="Monitor id."),
    target: str = TARGET,
    token: Optional[str] = TOKEN,
    json_output: bool = typer.Option(False, "--json", help="The snapshot as JSON."),
) -> None:
    """Show the latest snapshot of a monitor."""
    import grpc
    from google.protobuf import json_format

    from driftd.v1 import snapshot_pb2, snapshot_pb2_grpc

    name = monitor if monitor.startswith("monitors/") else f"monitors/{monitor}"
    metadata = [("authorization", f"Bearer {token}")] if token else None
    with grpc.insecure_channel(target) as channel:
        try:
            snap = snapshot_pb2_grpc.SnapshotServiceStub(channel).GetSnapshot(
                snapshot_pb2.GetSnapshotRequest(name=f"{name}/snapshots/latest"), metadata=metadata, timeout=30).snapshot
        except grpc.RpcError as exc:
            _fail(f"driftd snapshot: {exc.code().name}: {exc.details()}", 1)
    if json_output:
        typer.echo(json_format.MessageToJson(snap, indent=2))
        return
    verdict = snapshot_pb2.Verdict.Name

    def v(x: float) -> str:
        return "n/a" if x != x else f"{x:.4g}"

    typer.echo(f"{snap.name}  baseline {snap.baseline}  rows {snap.row_count}  verdict {verdict(snap.verdict)}  "
               f"drifted features {snap.drifted_features}")
    for f in snap.numeric_features:
        typer.echo(f"  {f.feature:<24} psi {v(f.psi.value):>8} (crit {v(f.psi.critical_threshold)})  ks p {v(f.ks.p_value):>8}  "
                   f"nan {v(f.nan_rate.value)}  {verdict(f.verdict)}")
    for f in snap.categorical_features:
        typer.echo(f"  {f.feature:<24} psi {v(f.psi.value):>8} chi2 p {v(f.chi2.p_value):>8} unseen {v(f.unseen_rate.value)}  {verdict(f.verdict)}")
    for e in snap.embedding_blocks:
        typer.echo(f"  [{e.block}] mmd2 {v(e.mmd2_unbiased.value)} p {v(e.mmd2_unbiased.p_value)}  {verdict(e.verdict)}")
    for o in snap.score_outputs:
        typer.echo(f"  (score {o.output}) psi {v(o.psi.value)} positive rate {v(o.positive_rate)} vs {v(o.baseline_positive_rate)}  {verdict(o.verdict)}")
    typer.echo(f"  latency p50/p95/p99 {v(snap.latency.p50_ms)}/{v(snap.latency.p95_ms)}/{v(snap.latency.p99_ms)} ms, "
               f"error rate {v(snap.latency.error_rate)}; labelled {snap.label_quality.labelled_count}, accuracy {v(snap.label_quality.accuracy)}")
    for reason in snap.verdict_reasons:
        typer.echo(f"  - {reason}")
