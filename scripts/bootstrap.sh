#!/usr/bin/env bash
# Create (or refresh) the project's virtual environment in .venv with the whole stack.
#
# - Uses uv (installed into the venv from PyPI) because it resolves and installs this stack in
#   ~15 s where pip takes ~130 s.
# - Torch: on machines that ship a local CPU wheel (a folder named by pip's `find-links`, e.g.
#   /opt/wheels with torch-*+cpu*.whl) the install is pinned to that wheel so no CUDA packages are
#   downloaded. Elsewhere torch installs as usual (CUDA build on Linux with a GPU). Set
#   GRIDFLEX_TORCH_CPU_INDEX=1 to take the CPU build from the PyTorch CPU index instead.
# - UV_COMPILE_BYTECODE=1: some environments set PYTHONDONTWRITEBYTECODE=1, which otherwise makes
#   every `import pytorch_forecasting` ~3x slower forever.
# Idempotent: does nothing when .venv is newer than pyproject.toml.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${GRIDFLEX_VENV:-.venv}"
STAMP="$VENV/.gridflex-installed"
if [[ -f "$STAMP" && "$STAMP" -nt pyproject.toml && "$STAMP" -nt scripts/bootstrap.sh ]]; then
  exit 0
fi
PY="${PYTHON:-$(command -v python3.11 || command -v python3)}"
echo "gridflex: creating $VENV with $("$PY" --version)" >&2
[[ -x "$VENV/bin/python" ]] || "$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check "uv>=0.4"
UV="$VENV/bin/uv"

args=(--python "$VENV/bin/python" --compile-bytecode)
constraints="$(mktemp)"
trap 'rm -f "$constraints"' EXIT
# Look for a local CPU torch wheel in pip's configured find-links folders.
links="$("$VENV/bin/python" -m pip config get global.find-links 2>/dev/null || true) ${PIP_FIND_LINKS:-} /opt/wheels"
for d in $links; do
  w=$(ls "$d"/torch-*+cpu-*.whl 2>/dev/null | head -n1 || true)
  if [[ -n "$w" ]]; then
    ver=$(basename "$w" | cut -d- -f2)            # e.g. 2.13.0+cpu
    echo "gridflex: using local CPU torch wheel $w" >&2
    echo "torch==$ver" >"$constraints"
    args+=(--find-links "$d" --constraint "$constraints")
    break
  fi
done
if [[ "${GRIDFLEX_TORCH_CPU_INDEX:-0}" == "1" ]]; then
  args+=(--extra-index-url https://download.pytorch.org/whl/cpu --index-strategy unsafe-best-match)
fi
UV_COMPILE_BYTECODE=1 "$UV" pip install "${args[@]}" -e ".[dev]"
# Fail loudly if CUDA wheels slipped in on a machine that asked for CPU only.
if grep -q '+cpu' "$constraints" 2>/dev/null && "$VENV/bin/python" -m pip list 2>/dev/null | grep -qi '^nvidia-'; then
  echo "gridflex: CUDA packages were installed despite the CPU pin" >&2; exit 1
fi
touch "$STAMP"
