#!/usr/bin/env bash
# Puts libtorch 2.11.0 (the version tch 0.24 expects) where the build finds it:
# `.cache/libtorch` -> the `torch` package of PyPI's torch==2.11.0 (build 2.11.0+cu130, the
# same build as the PyTorch on our GPU machines; CPU-only machines run it on CPU), installed
# into the repo's venv `.cache/venv`. Idempotent: does nothing when that version is there.
#
# To use a libtorch or PyTorch you already have instead, set LIBTORCH to the folder holding
# its include/ and lib/ (for a PyTorch install: .../site-packages/torch) before building;
# `.cargo/config.toml` only sets LIBTORCH when it is not set already.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.cache/venv"
VERSION="2.11.0"
LINK="$ROOT/.cache/libtorch"

die() { echo "setup-libtorch: error: $*" >&2; exit 1; }

if [[ ! -x "$VENV/bin/python" ]]; then
    command -v python3 >/dev/null 2>&1 || die "python3 not found on PATH: install Python 3 (3.10 or newer)"
    python3 -c 'import venv, ensurepip' 2>/dev/null || die "python3 lacks the venv/ensurepip modules (Debian/Ubuntu: apt-get install python3-venv)"
    mkdir -p "$ROOT/.cache"
    python3 -m venv "$VENV" || die "python3 -m venv $VENV failed"
fi
"$VENV/bin/python" -m pip --version >/dev/null 2>&1 || die "pip is missing in $VENV (python3 -m ensurepip)"

have="$("$VENV/bin/python" -c 'import torch; print(torch.__version__.split("+")[0])' 2>/dev/null || true)"
if [[ "$have" != "$VERSION" ]]; then
    echo "setup-libtorch: installing torch==$VERSION from PyPI into .cache/venv (about 2 GB, once; pip shows its progress)" >&2
    "$VENV/bin/python" -m pip install --disable-pip-version-check "torch==$VERSION" \
        || die "pip install torch==$VERSION failed"
fi
torch_dir="$("$VENV/bin/python" -c 'import torch, os; print(os.path.dirname(torch.__file__))')"
[[ -f "$torch_dir/lib/libtorch_cpu.so" ]] || die "$torch_dir/lib/libtorch_cpu.so not found"
if [[ "$(readlink "$LINK" 2>/dev/null)" != "$torch_dir" ]]; then
    ln -sfn "$torch_dir" "$LINK"
fi
echo "setup-libtorch: libtorch $VERSION at .cache/libtorch -> $torch_dir" >&2
