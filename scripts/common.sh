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
