#!/usr/bin/env bash
# Set up (first run only) and run the whole test suite. Extra arguments go to pytest.
set -euo pipefail
source "$(dirname "$0")/bootstrap.sh" dev
[ $# -gt 0 ] || bash scripts/test_node.sh  # Node client + conformance; skipped when pytest arguments are given
exec python -m pytest "$@"
