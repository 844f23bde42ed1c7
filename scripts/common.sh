# Shared by scripts/*: checks the toolchain and picks a cargo target directory outside the
# clone, so repeated runs (and CI) reuse what was already compiled.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/orchestrator-target}"
if ! command -v cargo >/dev/null 2>&1; then
  if [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
  else
    echo "error: cargo is not installed. Install Rust with rustup (https://rustup.rs), then rerun." >&2
    exit 2
  fi
fi
cd "$ROOT"

# Builds the developer portal (portal/dist, served by local mode at /) from source with npm.
build_portal() {
  if ! command -v npm >/dev/null 2>&1; then
    echo "error: npm is not installed; it builds the developer portal. Install Node.js 20+ and rerun." >&2
    exit 2
  fi
  npm ci --prefix "$ROOT/portal" --no-audit --no-fund --loglevel=error >/dev/null
  npm run build --prefix "$ROOT/portal" >/dev/null
}

# moto (PyPI) emulates AWS on loopback: the tests' Step Functions, SQS, DynamoDB and the
# AWS actions' CloudFormation, Secrets Manager and SSM; scripts/run points local mode's AWS
# actions at it. It lives in a virtual environment inside the project.
ensure_moto() {
  if [ ! -x "$ROOT/.venv/bin/moto_server" ]; then
    python3 -m venv "$ROOT/.venv"
    "$ROOT/.venv/bin/pip" install --quiet --disable-pip-version-check 'moto[server]==5.2.5'
  fi
  export MOTO_SERVER="$ROOT/.venv/bin/moto_server"
}

# A free TCP port on loopback.
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
