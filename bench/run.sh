#!/usr/bin/env bash
# The benchmarks, ours next to the peers, in one run: installs what the comparison needs (once),
# builds the benchmark programs, then runs bench/bench.py (see its help for the cases).
#
#   bench/run.sh [--quick] [--only training|loader|finetune|kernels ...] [--write BENCHMARKS.md]
#
# Needs ./install.sh to have run. Installs, outside the project's own environment:
#   .venv-bench/                      full PyPI torch + torchvision + fastai (about 5 GB: the
#                                     CPU-minimal libtorch of .venv cannot run Python torch)
#   target/bench-peers/evcxr/         the stock evcxr_jupyter kernel (cargo install, 5-9 min)
#   target/bench-peers/evcxr-state/   its config and compilation cache
#   target/bench/photos/              512 real-photo JPEGs for the loader case
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."

say() { printf '\n== %s\n' "$*"; }
die() { printf 'bench/run.sh: %s\n' "$*" >&2; exit 1; }

[ -x .venv/bin/python ] && [ -f .cargo/config.toml ] || die "run ./install.sh first (the project's venv and build are missing)"

T0=$SECONDS
# PyTorch, torchvision and fastai, pinned to what the project's libtorch is (torch 2.13.0).
# Mostly a download (about 5 GB); it runs in the background while cargo builds the stock kernel
# (mostly CPU), and is waited for before anything is measured.
PEERS="torch==2.13.0 torchvision==0.28.0 fastai==2.8.12 safetensors pillow"
marker=.venv-bench/.peers-$(echo "$PEERS" | tr ' =' '_-')
pip_pid=
if [ ! -f "$marker" ]; then
  say "installing the peers into .venv-bench (in the background): $PEERS"
  mkdir -p target/bench
  (
    set -e
    [ -x .venv-bench/bin/python ] || python3 -m venv .venv-bench
    .venv-bench/bin/python -m pip install -q --upgrade pip >/dev/null
    .venv-bench/bin/python -m pip install -q $PEERS
    touch "$marker"
  ) >target/bench/pip-install.log 2>&1 &
  pip_pid=$!
fi

evcxr=target/bench-peers/evcxr/bin/evcxr_jupyter
if [ ! -x "$evcxr" ]; then
  say "building the stock evcxr_jupyter 0.22.0 (the version our kernel embeds)"
  cargo install --locked evcxr_jupyter --version =0.22.0 --root target/bench-peers/evcxr -j "$(nproc)"
fi

if [ -n "$pip_pid" ]; then
  say "waiting for the peers' installation"
  wait "$pip_pid" || { tail -20 target/bench/pip-install.log >&2; die "installing the peers failed (log: target/bench/pip-install.log)"; }
fi
[ -f "$marker" ] || die "the peers are not installed (see target/bench/pip-install.log)"
echo "setting up took $((SECONDS - T0)) s"

say "building the benchmark programs"
cargo build --release --locked -j "$(nproc)" -p fastai --example bench_train --example bench_finetune --example bench_loader

say "running"
.venv/bin/python bench/bench.py "$@"
echo "bench/run.sh took $((SECONDS - T0)) s in all"
