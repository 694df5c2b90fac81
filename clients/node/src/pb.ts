// The generated driftd.v1 messages and enums (src/gen, from proto/driftd/v1 by scripts/gen-protos.mjs), one namespace per file.
export * as alarm from "./gen/driftd/v1/alarm";
export * as baseline from "./gen/driftd/v1/baseline";
export * as ingest from "./gen/driftd/v1/ingest";
export * as monitor from "./gen/driftd/v1/monitor";
export * as snapshot from "./gen/driftd/v1/snapshot";
export * as tensor from "./gen/driftd/v1/tensor";
