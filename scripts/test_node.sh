#!/usr/bin/env bash
# Node.js client (clients/node): install from the lock file, build, run its tests against a live
# driftd, then the Python-vs-Node conformance run (clients/conformance/run.py). Uses the project's
# venv (scripts/bootstrap.sh dev) for the server, the Python client and protoc.
set -euo pipefail
source "$(dirname "$0")/bootstrap.sh" dev
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "test_node: node and npm are needed (Node >= 20.10) for clients/node" >&2
  exit 1
fi
export PYTHON="$(command -v python)"
(
  cd clients/node
  npm ci --prefer-offline --no-audit --no-fund --loglevel=error
  npm run --silent build
  node --test --test-concurrency=1 --test-timeout=180000 --test-reporter=spec dist/test/*.test.js
)
python clients/conformance/run.py
