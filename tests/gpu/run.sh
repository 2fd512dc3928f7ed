#!/usr/bin/env bash
# The prepared GPU check (issue 20): on a machine with an NVIDIA GPU, after ./install.sh, builds the
# benchmark programs and runs tests/gpu/check.py, which checks and measures (device_info, resnet34
# training steps in fp32 / to_fp16 / channels-last next to plain PyTorch, the whole pipeline, the
# batch augmentation on the device (render_batch), the offline lesson's first fit, an interrupt
# during a fit, GPU memory after drop(learn), two kernels on one GPU) and writes gpu-check.json
# and gpu-check.md into $OUT (default target/gpu-check/).
# Under 5 minutes on one H200 (planned; see BENCHMARKS.md for what it measured when it ran).
#
#   tests/gpu/run.sh                 on a GPU machine; elsewhere prints one line and exits 0
#   tests/gpu/run.sh --cpu-dry-run   the same steps on the CPU at tiny sizes (tests the plumbing)
#
# Exit status: 0 when every check passed (or there is no GPU), 1 when one failed (the results
# are written either way), 2 when the build failed.
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
DRY=()
case "${1:-}" in
  --cpu-dry-run) DRY=(--cpu-dry-run) ;;
  "") ;;
  *) echo "usage: tests/gpu/run.sh [--cpu-dry-run]" >&2; exit 2 ;;
esac
if [ ${#DRY[@]} = 0 ] && ! { command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; }; then
  echo "tests/gpu/run.sh: needs an NVIDIA GPU (no working nvidia-smi here): nothing checked; --cpu-dry-run tests the steps on the CPU"
  exit 0
fi
OUT_DIR=${OUT:-$ROOT/target/gpu-check}
mkdir -p "$OUT_DIR"
if [ ! -x .venv/bin/python ] || [ ! -f .cargo/config.toml ] || ! command -v cargo >/dev/null; then
  # A GPU machine without our install (e.g. a lent one that cannot reach the registries): the
  # steps that need no build still run (plain PyTorch's numbers), the others are recorded as failed.
  [ ${#DRY[@]} = 0 ] || { echo "tests/gpu/run.sh: --cpu-dry-run needs ./install.sh first" >&2; exit 2; }
  echo "tests/gpu/run.sh: no ./install.sh build here (.venv, .cargo/config.toml or cargo missing):" \
    "only what needs no build runs; the rest is recorded as failed"
  exec python3 tests/gpu/check.py "$OUT_DIR"
fi
echo "==> building (cargo build --release: the workspace and the benchmark examples)"
T0=$SECONDS
if ! cargo build --release --locked -j "$(nproc)" --workspace --example bench_train --example bench_finetune --example bench_augment --example bench_loader \
    >"$OUT_DIR/build.log" 2>&1; then
  tail -30 "$OUT_DIR/build.log" >&2
  echo "tests/gpu/run.sh: the build failed (log: $OUT_DIR/build.log)" >&2
  exit 2
fi
echo "built in $((SECONDS - T0)) s"
exec .venv/bin/python tests/gpu/check.py "$OUT_DIR" "${DRY[@]}"
