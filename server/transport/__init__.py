"""gRPC transport: thin servicers, codec, error mapping, interceptors."""
