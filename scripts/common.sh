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
