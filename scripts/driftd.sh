#!/usr/bin/env bash
# Set up (first run only) and run a driftd command, e.g. `bash scripts/driftd.sh serve`.
set -euo pipefail
source "$(dirname "$0")/bootstrap.sh" runtime
exec driftd "$@"
