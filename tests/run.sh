#!/usr/bin/env bash
# Runs every test: the Rust tests of the workspace, then the integration tests that drive the
# kernel and the notebooks through a real Jupyter client. Run ./install.sh first.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
if [ ! -x .venv/bin/python ] || [ ! -f .cargo/config.toml ]; then
  echo "tests/run.sh: run ./install.sh first (no .venv or .cargo/config.toml here)" >&2
  exit 1
fi
echo "==> cargo test (release profile, so install.sh's build is reused)"
cargo test --release --locked -j "${JOBS:-2}" --workspace
echo "==> integration tests (pytest, through jupyter_client)"
.venv/bin/python -m pytest -q tests/
