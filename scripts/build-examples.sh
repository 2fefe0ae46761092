#!/usr/bin/env bash
# Builds the example plugins written in other languages into WebAssembly components:
#
#   examples/python-sjf/build/python-sjf.wasm            (Python, componentize-py)
#   examples/python-server-lr/build/python-server-lr.wasm (Python, componentize-py)
#   examples/js-range-filter/build/js-range-filter.wasm  (JavaScript, jco + componentize-js)
#
# Idempotent: the Python toolchain goes into a venv at .cache/venv (created once), the JS
# toolchain into examples/js-range-filter/node_modules (installed from package-lock.json once,
# again only when package.json or the lockfile changes), and a component is rebuilt only when
# one of its sources or wit/plugins.wit is newer than it. Check the results with
# `infra plugin check FILE.wasm`.
#
# Needs python3 (with the venv module and pip), node and npm, and the PyPI and npm registries
# the first time.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WIT="$ROOT/wit/plugins.wit"
VENV="$ROOT/.cache/venv"
COMPONENTIZE_PY_VERSION="0.25.1"
JS_DIR="$ROOT/examples/js-range-filter"

die() {
    echo "build-examples: error: $*" >&2
    exit 1
}

need() {
    command -v "$1" >/dev/null 2>&1 || die "\`$1\` not found on PATH; $2"
}

# up_to_date OUT SRC...: true when OUT exists and is newer than every SRC.
up_to_date() {
    local out="$1" src
    shift
    [[ -f "$out" ]] || return 1
    for src in "$@"; do
        [[ "$out" -nt "$src" ]] || return 1
    done
}

# rel PATH: PATH relative to the repository root, for messages.
rel() {
    echo "${1#"$ROOT"/}"
}

[[ -f "$WIT" ]] || die "WIT contract not found at $(rel "$WIT")"

# ---------------------------------------------------------------- Python: componentize-py

ensure_componentize_py() {
    if [[ ! -x "$VENV/bin/python" ]]; then
        need python3 "install Python 3 (3.10 or newer) to build the Python examples"
        python3 -c 'import venv, ensurepip' 2>/dev/null \
            || die "python3 lacks the venv/ensurepip modules (on Debian/Ubuntu: apt-get install python3-venv)"
        echo "build-examples: creating venv $(rel "$VENV")" >&2
        rm -rf "$VENV"
        python3 -m venv "$VENV" || die "\`python3 -m venv $(rel "$VENV")\` failed"
    fi
    local have
    have="$("$VENV/bin/componentize-py" --version 2>/dev/null || true)"
    if [[ "$have" != "componentize-py $COMPONENTIZE_PY_VERSION" ]]; then
        "$VENV/bin/python" -m pip --version >/dev/null 2>&1 \
            || die "pip is missing in $(rel "$VENV") (delete the folder and rerun; on Debian/Ubuntu install python3-venv and python3-pip)"
        echo "build-examples: installing componentize-py==$COMPONENTIZE_PY_VERSION into $(rel "$VENV")" >&2
        "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
            "componentize-py==$COMPONENTIZE_PY_VERSION" \
            || die "pip install componentize-py==$COMPONENTIZE_PY_VERSION failed"
    fi
}

# build_python NAME WORLD: examples/NAME/app.py -> examples/NAME/build/NAME.wasm.
build_python() {
    local name="$1" world="$2"
    local dir="$ROOT/examples/$name"
    local out="$dir/build/$name.wasm"
    local sources=("$WIT" "$dir"/*.py)
    if up_to_date "$out" "${sources[@]}"; then
        echo "up to date  $(rel "$out")"
        return
    fi
    ensure_componentize_py
    mkdir -p "$dir/build"
    local tmp="$dir/build/.$name.wasm.tmp" start=$SECONDS
    rm -f "$tmp"
    # VIRTUAL_ENV makes componentize-py search the venv's site-packages instead of whatever
    # the system Python has installed, so the build does not depend on the machine.
    (cd "$dir" && VIRTUAL_ENV="$VENV" "$VENV/bin/componentize-py" \
        -d "$WIT" -w "$world" componentize -p . app -o "$tmp" >/dev/null) \
        || { rm -f "$tmp"; die "componentize-py failed for $(rel "$dir")"; }
    mv -f "$tmp" "$out"
    echo "built       $(rel "$out") ($(stat -c %s "$out") bytes, $((SECONDS - start)) s)"
}

# ---------------------------------------------------------------- JavaScript: jco

ensure_node_modules() {
    need node "install Node.js 20 to build examples/js-range-filter"
    need npm "install npm (it ships with Node.js) to build examples/js-range-filter"
    local major
    major="$(node -p 'process.versions.node.split(".")[0]')"
    ((major >= 18)) || die "Node.js $(node --version) is too old; jco needs Node.js 18 or newer (20 is tested)"
    local stamp="$JS_DIR/node_modules/.package-lock.json"
    local inputs=("$JS_DIR/package.json")
    [[ -f "$JS_DIR/package-lock.json" ]] && inputs+=("$JS_DIR/package-lock.json")
    if [[ -d "$JS_DIR/node_modules" ]] && up_to_date "$stamp" "${inputs[@]}"; then
        return
    fi
    if [[ -f "$JS_DIR/package-lock.json" ]]; then
        echo "build-examples: npm ci in $(rel "$JS_DIR")" >&2
        (cd "$JS_DIR" && npm ci --no-audit --no-fund --loglevel=error >&2) || die "npm ci failed in $(rel "$JS_DIR")"
    else
        echo "build-examples: npm install in $(rel "$JS_DIR") (no package-lock.json)" >&2
        (cd "$JS_DIR" && npm install --no-audit --no-fund --loglevel=error >&2) || die "npm install failed in $(rel "$JS_DIR")"
    fi
    touch "$stamp"
}

build_js_range_filter() {
    local out="$JS_DIR/build/js-range-filter.wasm"
    local sources=("$WIT" "$JS_DIR/package.json")
    [[ -f "$JS_DIR/package-lock.json" ]] && sources+=("$JS_DIR/package-lock.json")
    local f
    while IFS= read -r -d '' f; do sources+=("$f"); done \
        < <(find "$JS_DIR/src" -type f -print0)
    if up_to_date "$out" "${sources[@]}"; then
        echo "up to date  $(rel "$out")"
        return
    fi
    ensure_node_modules
    mkdir -p "$JS_DIR/build"
    local tmp="$JS_DIR/build/.js-range-filter.tmp.wasm" start=$SECONDS
    rm -f "$tmp"
    # `-d http -d fetch-event`: without them the component imports wasi:http, which the infra
    # host does not provide (it links WASI p2 and infra:plugins/log only).
    (cd "$JS_DIR" && ./node_modules/.bin/jco componentize src/range-filter.js \
        --wit "$WIT" --world-name cleaner -d http -d fetch-event -o "$tmp" >/dev/null) \
        || { rm -f "$tmp"; die "jco componentize failed for $(rel "$JS_DIR")"; }
    mv -f "$tmp" "$out"
    echo "built       $(rel "$out") ($(stat -c %s "$out") bytes, $((SECONDS - start)) s)"
}

build_python python-sjf scheduler
build_python python-server-lr aggregator
build_js_range_filter
