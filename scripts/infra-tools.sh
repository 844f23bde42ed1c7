# Shared by the infra scripts: the AWS tooling (SAM CLI, cfn-lint, cargo-lambda with zig
# for cross-compiling) in a virtual environment inside the project, apart from moto's, whose
# botocore pin differs. Pinned, so CI checks with the versions the README names.
infra_tools() {
  local venv="$ROOT/.venv-infra"
  if [ ! -x "$venv/bin/sam" ] || [ ! -x "$venv/bin/cfn-lint" ] || [ ! -x "$venv/bin/cargo-lambda" ]; then
    echo "installing the AWS tooling into .venv-infra" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check \
      'aws-sam-cli==1.170.0' 'cfn-lint==1.58.0' 'cargo-lambda==1.9.2' 'ziglang==0.17.0'
  fi
  export PATH="$venv/bin:$PATH"
  # Offline: no telemetry, and a region for the tools that insist on one.
  export SAM_CLI_TELEMETRY=0
  export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-eu-west-1}"
}

# Rust's aarch64 standard library, for cross-compiling the functions to Graviton.
arm64_std() {
  if command -v rustup >/dev/null 2>&1 && ! rustup target list --installed | grep -qx aarch64-unknown-linux-gnu; then
    rustup target add aarch64-unknown-linux-gnu
  fi
}
