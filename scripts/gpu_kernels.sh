#!/usr/bin/env bash
# GPU runbook for driftd.kernels: the one command a session with a CUDA GPU (the device tool's H100)
# runs from the repository root. Installs nothing: it uses the machine's python3 with its torch and
# triton (KINDS.md: torch 2.11 + triton 3.6 there) and imports driftd.kernels straight from this
# checkout through a throw-away `driftd` package shim (no pip install of the whole project).
#
#   bash scripts/gpu_kernels.sh [STAGE ...]        (default: test tune-hist tune-mmd bench)
#
# Stages (each fits one 10-minute device call; run them in two or three calls, see bench/README.md
# "Kernels" → GPU runbook):
#   test       pytest tests/kernels on the GPU (TRITON_INTERPRET=0: compiled kernels, bf16 included)
#   tune-hist  bench/kernels_tune.py --ops histogram   → $OUT/kernels_tune_hist.csv
#   tune-mmd   bench/kernels_tune.py --ops mmd2        → $OUT/kernels_tune_mmd.csv
#   bench      bench/bench_kernels.py --device cuda    → $OUT/kernels_h100.csv (the README's table source)
#   quick      kernels_tune.py --quick (smoke test of the tuner, ~1 min)
# Logs go to $OUT/<stage>.log; the last lines of each log are printed at the end.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${OUT:-$ROOT/gpu_out}"
mkdir -p "$OUT"
PY="${PYTHON:-python3}"
cd "$ROOT"

# driftd.kernels from this checkout: <shim>/driftd/kernels -> $ROOT/kernels
SHIM="$(mktemp -d)"
trap 'rm -rf "$SHIM"' EXIT
mkdir -p "$SHIM/driftd"
: > "$SHIM/driftd/__init__.py"
ln -s "$ROOT/kernels" "$SHIM/driftd/kernels"
export PYTHONPATH="$SHIM${PYTHONPATH:+:$PYTHONPATH}"
export TRITON_INTERPRET=0  # tests/conftest.py only sets it when unset
export PYTHONDONTWRITEBYTECODE=1

{
  echo "== $(date -u +%FT%TZ) $(hostname)"
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.max.sm --format=csv 2>&1 || true
  "$PY" - <<'EOF'
import torch, triton, driftd.kernels as k
print("python", __import__("sys").version.split()[0], "torch", torch.__version__, "triton", triton.__version__,
      "cuda", torch.cuda.is_available(), torch.cuda.get_device_name() if torch.cuda.is_available() else "-")
print("driftd.kernels from", k.__file__)
EOF
} 2>&1 | tee "$OUT/env.log"
"$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" || { echo "no CUDA GPU here"; exit 2; }
for mod in pytest numpy; do
  "$PY" -c "import $mod" 2>/dev/null || echo "WARNING: python module $mod missing (the test stage needs it)"
done

STAGES=("$@")
[ ${#STAGES[@]} -eq 0 ] && STAGES=(test tune-hist tune-mmd bench)
status=0
for stage in "${STAGES[@]}"; do
  log="$OUT/$stage.log"
  t0=$(date +%s)
  case "$stage" in
    test)
      "$PY" -m pytest tests/kernels -q -p no:cacheprovider --durations=15 \
        --junitxml="$OUT/pytest_kernels.xml" >"$log" 2>&1 ;;
    tune-hist)
      "$PY" bench/kernels_tune.py --ops histogram --budget-s 360 --out "$OUT/kernels_tune_hist.csv" >"$log" 2>&1 ;;
    tune-mmd)
      "$PY" bench/kernels_tune.py --ops mmd2 --budget-s 480 --out "$OUT/kernels_tune_mmd.csv" >"$log" 2>&1 ;;
    bench)
      "$PY" bench/bench_kernels.py --device cuda --out "$OUT/kernels_h100.csv" >"$log" 2>&1 ;;
    quick)
      "$PY" bench/kernels_tune.py --quick --budget-s 120 --out "$OUT/kernels_tune_quick.csv" >"$log" 2>&1 ;;
    *)
      echo "unknown stage $stage" >"$log"; false ;;
  esac
  rc=$?
  [ $rc -ne 0 ] && status=$rc
  echo "== stage $stage: exit $rc, $(( $(date +%s) - t0 )) s, log $log" | tee -a "$OUT/stages.log"
done
for stage in "${STAGES[@]}"; do
  echo; echo "===== $stage (tail) ====="
  case "$stage" in
    tune-*|quick) sed -n '/=== best per case/,$p' "$OUT/$stage.log" | tail -n 20; tail -n 3 "$OUT/$stage.log" ;;
    *) tail -n 25 "$OUT/$stage.log" ;;
  esac
done
exit $status
