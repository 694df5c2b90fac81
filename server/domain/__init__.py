"""Domain layer: monitors, schemas, baselines, windows, statistics. Never imports grpc."""
