"""Application services between transport and domain: per-monitor runtimes (ingest queue, worker,
evaluation loop), baseline building, snapshot fan-out. No grpc here either."""
