# Sourced by scripts/driftd.sh and scripts/test.sh: create .venv and install driftd into it.
#   source scripts/bootstrap.sh [runtime|dev]
# torch is installed first and pinned exactly (torch==2.13.0, the CPU wheel): an unpinned torch, or
# a range admitting a newer release, would pull a multi-GB CUDA build. Re-runs are quick: nothing
# is reinstalled while the project files are unchanged.
set -euo pipefail
_profile="${1:-runtime}"
_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
_venv="${DRIFTD_VENV:-$_root/.venv}"
_python="${PYTHON:-python3}"
if [ ! -x "$_venv/bin/python" ]; then
  echo "driftd: creating virtual environment $_venv" >&2
  "$_python" -m venv "$_venv"
fi
# shellcheck disable=SC1091
source "$_venv/bin/activate"
_stamp="$_venv/.driftd-$_profile.stamp"
_want="$(cat "$_root/pyproject.toml" "$_root/clients/python/pyproject.toml" | sha256sum | cut -d' ' -f1)"
_dev_stamp="$_venv/.driftd-dev.stamp"
# A dev install (tests) includes everything the runtime needs.
if [ "$_profile" = "runtime" ] && [ -f "$_dev_stamp" ] && [ "$(cat "$_dev_stamp")" = "$_want" ]; then
  _stamp="$_dev_stamp"
fi
if [ ! -f "$_stamp" ] || [ "$(cat "$_stamp")" != "$_want" ]; then
  echo "driftd: installing ($_profile) into $_venv" >&2
  _pip=(python -m pip install --quiet --disable-pip-version-check)
  "${_pip[@]}" --upgrade pip setuptools wheel
  "${_pip[@]}" "torch==2.13.0"
  _extra="triton"
  [ "$_profile" = "dev" ] && _extra="dev"
  "${_pip[@]}" -e "$_root/clients/python" -e "$_root[$_extra]"
  echo "$_want" > "$_stamp"
fi
cd "$_root"
