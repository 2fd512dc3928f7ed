#!/usr/bin/env bash
# Sets up everything fastai-rs needs, in this folder and in the data directory:
#   .venv/              libtorch (from the PyPI torch wheel that tch pins), JupyterLab, nbclient
#   .cargo/config.toml  tells cargo where libtorch is, in any shell
#   target/release/     the library and the fastai-kernel binary
#   .venv/share/jupyter/kernels/fastai-rust   the "Rust (fastai)" kernelspec
#   $FASTAI_HOME (~/.fastai)   offline weights, Fashion-MNIST and MNIST images, lesson-3 data (tools/assets.py)
#   with --browser-tests: Debian's Chromium (apt-get) and tools/lab/node_modules (playwright-core)
#
# Safe to re-run: every step checks what is already there and only does what is missing.
set -euo pipefail

usage() {
  cat <<'EOF'
usage: ./install.sh [--cuda | --cpu] [--jobs N] [--skip-assets] [--browser-tests] [--print-torch-plan]

  --cuda         install a CUDA build of libtorch (about 5 GB), the one the NVIDIA driver runs:
                 driver >= 580: CUDA 13.0 (PyPI); 570-579: cu128, 525-569: cu126 (from PyTorch's
                 own package index); older drivers: says which driver it needs
  --cpu          install the CPU-only libtorch (1.2 GB), even on a machine with a GPU
                 (default: --cuda when `nvidia-smi` answers, --cpu otherwise)
  --print-torch-plan  print which libtorch build would be installed, and why, then exit
  --jobs N       parallel build jobs for cargo (default: 2)
  --skip-assets  do not fetch the offline weights and images (tests that use them will fail)
  --browser-tests  also set up the JupyterLab-in-a-browser test: Chromium (Debian's package,
                 installed with apt-get when run as root or with passwordless sudo) and
                 playwright-core (npm, into tools/lab/node_modules; needs Node.js >= 20)

Environment: FASTAI_HOME (data directory, default ~/.fastai), PYTHON (default python3),
CHROMIUM (the browser for --browser-tests, default /usr/bin/chromium),
FASTAI_TORCH_VARIANT (cpu, cu126, cu128 or cu130: this libtorch build, whatever the driver),
FASTAI_TORCH_INDEX (the package index for the cu126/cu128 builds, default
https://download.pytorch.org/whl/<variant>; see tools/torch_variant.sh).
EOF
}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$ROOT"
TORCH_VERSION=2.13.0   # the libtorch that tch 0.26.0 is written against (tch checks it at build time)
CPU_EXTRAS=(nvidia-cuda-runtime==13.0.96 nvidia-cuda-cupti==13.0.85)  # libtorch_cpu.so NEEDs these
PY_REQUIREMENTS="$ROOT/tools/requirements.txt"
PYTHON=${PYTHON:-python3}
FASTAI_HOME=${FASTAI_HOME:-$HOME/.fastai}
VENV="$ROOT/.venv"
JOBS=2
VARIANT=""
SKIP_ASSETS=0
BROWSER_TESTS=0
PRINT_PLAN=0
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
LAB_TOOLS="$ROOT/tools/lab"
START=$SECONDS

while [ $# -gt 0 ]; do
  case "$1" in
    --cuda) VARIANT=cuda ;;
    --cpu) VARIANT=cpu ;;
    --jobs) JOBS=${2:?--jobs needs a number}; shift ;;
    --skip-assets) SKIP_ASSETS=1 ;;
    --browser-tests) BROWSER_TESTS=1 ;;
    --print-torch-plan) PRINT_PLAN=1 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "install.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done

step() { printf '\n==> %s\n' "$*"; }
fail() { printf '\ninstall.sh: error: %s\n' "$*" >&2; exit 1; }

# Which libtorch build (CPU, or the CUDA build this machine's NVIDIA driver runs).
# shellcheck source=tools/torch_variant.sh
. "$ROOT/tools/torch_variant.sh"
# pip's arguments for the build torch_plan chose (the CPU one without the CUDA libraries it
# does not use, only the two that libtorch_cpu.so links).
torch_pip_args() {
  if [ "$TORCH_VARIANT" = cpu ]; then
    TORCH_PIP=(--force-reinstall --no-deps "$TORCH_SPEC" "${CPU_EXTRAS[@]}")
  else
    TORCH_PIP=(--force-reinstall ${TORCH_INDEX:+--extra-index-url "$TORCH_INDEX"} "$TORCH_SPEC")
  fi
}
if [ "$PRINT_PLAN" = 1 ]; then
  if torch_plan "$TORCH_VERSION" "${VARIANT:-auto}"; then
    torch_pip_args
    echo "libtorch $TORCH_VERSION: $TORCH_VARIANT ($TORCH_WHY)"
    echo "pip install ${TORCH_PIP[*]}"
    exit 0
  fi
  echo "install.sh: $TORCH_WHY" >&2
  exit 1
fi
# Compare dotted versions: version_ge 1.95.0 1.95 -> true
version_ge() { [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" = "$2" ]; }

# ------------------------------------------------------------------ 1. prerequisites
step "Checking prerequisites"
missing=()
if ! command -v cargo >/dev/null || ! command -v rustc >/dev/null; then
  missing+=("Rust (cargo, rustc >= 1.95): install with https://rustup.rs, then open a new shell")
else
  RUSTC_V=$(rustc --version | awk '{print $2}')
  version_ge "${RUSTC_V%%-*}" 1.95 || missing+=("rustc >= 1.95 (found $RUSTC_V): run 'rustup update stable'")
fi
if ! command -v "$PYTHON" >/dev/null; then
  missing+=("python3 >= 3.10 with venv: e.g. 'sudo apt install python3 python3-venv', or set PYTHON=/path/to/python3")
else
  PY_V=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
  version_ge "$PY_V" 3.10 || missing+=("python3 >= 3.10 (found $PY_V): install a newer Python or set PYTHON=")
  "$PYTHON" -c 'import venv, ensurepip' 2>/dev/null ||
    missing+=("Python's venv module (for $PYTHON $PY_V): e.g. 'sudo apt install python3-venv'")
fi
CXX_FOUND=""
for c in c++ g++ clang++; do command -v "$c" >/dev/null && { CXX_FOUND=$c; break; }; done
[ -n "$CXX_FOUND" ] || missing+=("a C/C++ compiler (torch-sys builds C++ glue): e.g. 'sudo apt install build-essential'")
command -v cc >/dev/null || command -v gcc >/dev/null || command -v clang >/dev/null ||
  missing+=("a C compiler (cc): e.g. 'sudo apt install build-essential'")
if [ "$BROWSER_TESTS" = 1 ]; then
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    missing+=("Node.js >= 20 with npm (for --browser-tests): see https://nodejs.org, or leave out --browser-tests")
  else
    NODE_V=$(node --version 2>/dev/null | sed 's/^v//')
    version_ge "${NODE_V:-0}" 20 ||
      missing+=("Node.js >= 20 for --browser-tests (found ${NODE_V:-none}; playwright-core needs 20): see https://nodejs.org")
  fi
fi
if [ ${#missing[@]} -gt 0 ]; then
  printf '\nMissing prerequisites:\n' >&2
  printf '  - %s\n' "${missing[@]}" >&2
  exit 1
fi
echo "rustc $RUSTC_V, python $PY_V, $CXX_FOUND"

# One install at a time in this folder: two would fight over the venv and target/.
exec 9>"$ROOT/.install.lock"
if command -v flock >/dev/null && ! flock -n 9; then
  fail "another ./install.sh is running in $ROOT; wait for it to finish"
fi

torch_plan "$TORCH_VERSION" "${VARIANT:-auto}" || fail "$TORCH_WHY"
torch_pip_args
if [ "$TORCH_VARIANT" = cpu ]; then VARIANT=cpu; else VARIANT=cuda; fi
echo "libtorch variant: $TORCH_VARIANT ($TORCH_WHY; override with --cpu, --cuda or FASTAI_TORCH_VARIANT)"
# The marker's name: "cuda" stays the PyPI CUDA 13 build (as before), the others name theirs.
case "$TORCH_VARIANT" in cpu) MARK_NAME=cpu ;; cu130) MARK_NAME=cuda ;; *) MARK_NAME=cuda-$TORCH_VARIANT ;; esac

pip_or_fail() {
  local what=$1; shift
  if ! "$VENV/bin/python" -m pip install --disable-pip-version-check "$@"; then
    fail "pip could not install $what (is PyPI reachable? try 'pip download six' to check).
Nothing already installed was removed: re-run ./install.sh once the network is back."
  fi
}

# ------------------------------------------------------------------ 2. venv and the Jupyter side
step "Python venv $VENV"
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import sys' 2>/dev/null; then
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV" || fail "could not create a venv with $PYTHON"
fi

step "JupyterLab, jupyter_client, nbclient (and the converters' numpy, safetensors, Pillow)"
REQ_SUM=$(sha256sum "$PY_REQUIREMENTS" | cut -c1-16)
if [ "$(cat "$VENV/.fastai-jupyter" 2>/dev/null || true)" = "$REQ_SUM" ]; then
  echo "present"
else
  pip_or_fail "the Jupyter packages" --quiet --force-reinstall -r "$PY_REQUIREMENTS"
  echo "$REQ_SUM" >"$VENV/.fastai-jupyter"
fi

# ------------------------------------------------------------------ 3. libtorch in the venv
step "libtorch $TORCH_VERSION ($TORCH_VARIANT) in $VENV"
SITE=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
LIBTORCH="$SITE/torch"
MARKER="$VENV/.fastai-torch"
have=$(cat "$MARKER" 2>/dev/null || true)
[ -f "$LIBTORCH/lib/libtorch_cpu.so" ] || have=""
# What is there serves when it is the build asked for, or any CUDA build when the CPU one is (it
# runs on the CPU too).
if [ -n "$have" ] && { [ "$have" = "$MARK_NAME $TORCH_VERSION" ] ||
     { [ "$VARIANT" = cpu ] && [ "${have%% *}" != cpu ] && [ "${have#* }" = "$TORCH_VERSION" ]; }; }; then
  echo "present (${have%% *})"
else
  # No marker means no install or an interrupted one: reinstall over whatever is there.
  rm -f "$MARKER"
  if [ "$VARIANT" = cuda ]; then
    if [ -z "$TORCH_INDEX" ]; then
      pip_or_fail "$TORCH_SPEC (CUDA 13)" "${TORCH_PIP[@]}"
    else
      echo "from $TORCH_INDEX"
      "$VENV/bin/python" -m pip install --disable-pip-version-check "${TORCH_PIP[@]}" ||
        fail "pip could not install $TORCH_SPEC from $TORCH_INDEX (PyTorch's own package index: the
CUDA 12 builds for NVIDIA drivers older than 580 are only there). Is it reachable from here? Set
FASTAI_TORCH_INDEX=URL for a mirror, or upgrade the driver to >= 580 for PyPI's CUDA 13 build.
Nothing already installed was removed: re-run ./install.sh once the index is reachable."
    fi
  else
    pip_or_fail "torch $TORCH_VERSION (CPU libraries)" "${TORCH_PIP[@]}"
  fi
  [ -f "$LIBTORCH/lib/libtorch_cpu.so" ] || fail "torch installed but $LIBTORCH/lib/libtorch_cpu.so is missing"
  echo "$MARK_NAME $TORCH_VERSION" >"$MARKER"
fi
# NCCL for data-parallel training on GPUs: lib/build.rs compiles it against the CUDA headers that
# torch's own dependencies bring, plus two small header packages they lack (crt/host_config.h and
# nv/target, ~3 MB). Without them the library builds without NCCL (Gloo still works).
if [ "$TORCH_VARIANT" = cu130 ] &&
   { [ ! -f "$SITE/nvidia/cu13/include/crt/host_config.h" ] || [ ! -d "$SITE/nvidia/cu13/include/nv" ]; }; then
  "$VENV/bin/python" -m pip install --disable-pip-version-check -q \
    "nvidia-cuda-crt==13.0.88.*" "nvidia-cuda-cccl==13.0.85.*" ||
    echo "note: the CUDA headers for NCCL did not install: data-parallel training will use Gloo"
fi

# ------------------------------------------------------------------ 4. cargo finds libtorch
step "Cargo configuration (.cargo/config.toml)"
mkdir -p "$ROOT/.cargo"
CONFIG="$ROOT/.cargo/config.toml"
cat >"$CONFIG.new" <<EOF
# Written by install.sh. LIBTORCH tells torch-sys where libtorch is; the rpath lets the binaries
# cargo builds here find libtorch's .so files at run time without LD_LIBRARY_PATH.
# Changing LIBTORCH (even its spelling) rebuilds torch-sys' C++ glue.
[env]
LIBTORCH = "$LIBTORCH"

[target.x86_64-unknown-linux-gnu]
rustflags = ["-C", "link-arg=-Wl,-rpath,$LIBTORCH/lib"]

[target.aarch64-unknown-linux-gnu]
rustflags = ["-C", "link-arg=-Wl,-rpath,$LIBTORCH/lib"]
EOF
if cmp -s "$CONFIG.new" "$CONFIG"; then rm "$CONFIG.new"; echo "unchanged"; else mv "$CONFIG.new" "$CONFIG"; echo "written"; fi

# ------------------------------------------------------------------ 5. build and register the kernel
step "Building the workspace (release, $JOBS jobs; the first build takes 10-15 minutes)"
cargo build --release --locked -j "$JOBS" --workspace ||
  fail "cargo build failed (see above). Re-running ./install.sh resumes where it stopped."
"$ROOT/target/release/fastai-kernel" install --sys-prefix "$VENV" --libtorch "$LIBTORCH" ||
  fail "could not register the kernelspec"

step "Preloading the library into the kernel's build folders (first time: about 4 minutes)"
# Two kernels can then start at once without compiling libtorch's bindings (see kernel/src/preload.rs).
LIBTORCH="$LIBTORCH" "$ROOT/target/release/fastai-kernel" prepare --slots 2 2>&1 | grep -v '^ *Compiling ' ||
  fail "could not compile the library for the kernel (see above); re-run ./install.sh"

# ------------------------------------------------------------------ 6. offline assets
if [ "$SKIP_ASSETS" = 1 ]; then
  step "Offline assets: skipped (--skip-assets)"
else
  step "Offline assets in $FASTAI_HOME"
  "$VENV/bin/python" "$ROOT/tools/assets.py" --home "$FASTAI_HOME" ||
    fail "could not fetch the offline assets (see above); re-run ./install.sh to resume"
fi

# ------------------------------------------------------------------ 7. browser tests (opt-in)
BROWSER_LINE="not set up (./install.sh --browser-tests)"
if [ "$BROWSER_TESTS" = 1 ]; then
  step "Browser tests: Chromium and playwright-core"
  if [ -x "$CHROMIUM" ]; then
    echo "Chromium present: $CHROMIUM"
  else
    if [ "$(id -u)" = 0 ]; then SUDO=(); elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then SUDO=(sudo -n); else SUDO=(none); fi
    if ! command -v apt-get >/dev/null; then
      echo "install.sh: warning: $CHROMIUM is missing and there is no apt-get here: install Chromium with" \
        "your package manager and set CHROMIUM=/path/to/chromium; the browser test is skipped until then" >&2
    elif [ "${SUDO[*]}" = none ]; then
      echo "install.sh: warning: Chromium is missing and installing it needs root: run" \
        "'sudo apt-get install -y chromium', then ./install.sh --browser-tests again; the browser test" \
        "is skipped until then" >&2
    else
      echo "apt-get install chromium (a few minutes)"
      "${SUDO[@]}" apt-get update -q &&
        DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -q chromium ||
        fail "apt-get could not install chromium (is the Debian mirror reachable?); re-run ./install.sh --browser-tests"
      [ -x "$CHROMIUM" ] || fail "the chromium package is installed but $CHROMIUM is not there; set CHROMIUM=/path/to/chromium"
    fi
  fi
  # playwright-core only drives a browser; it downloads none (and `npx playwright install` is never run).
  LOCK_SUM=$(sha256sum "$LAB_TOOLS/package-lock.json" | cut -c1-16)
  if [ "$(cat "$LAB_TOOLS/node_modules/.fastai-lock" 2>/dev/null || true)" = "$LOCK_SUM" ] &&
     [ -f "$LAB_TOOLS/node_modules/playwright-core/package.json" ]; then
    echo "playwright-core present"
  else
    (cd "$LAB_TOOLS" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --no-update-notifier --loglevel=error) ||
      fail "npm could not install playwright-core (is the npm registry reachable?); re-run ./install.sh --browser-tests"
    echo "$LOCK_SUM" >"$LAB_TOOLS/node_modules/.fastai-lock"
  fi
  if [ -x "$CHROMIUM" ]; then
    BROWSER_LINE="$("$CHROMIUM" --version 2>/dev/null | head -n1), playwright-core $(node -p 'require("'"$LAB_TOOLS"'/node_modules/playwright-core/package.json").version')"
  else
    BROWSER_LINE="Chromium missing (see the warning above): the browser test will be skipped"
  fi
fi

# ------------------------------------------------------------------ 8. summary
DEVICE_LINE=$(FASTAI_HOME="$FASTAI_HOME" "$ROOT/target/release/fastai-device" 2>&1 || true)
step "Done in $((SECONDS - START)) s"
cat <<EOF
  rustc:        $RUSTC_V
  libtorch:     $TORCH_VERSION ($TORCH_VARIANT install) in $LIBTORCH
  device:       $DEVICE_LINE
  Jupyter:      $("$VENV/bin/jupyter" lab --version 2>/dev/null | sed 's/^/JupyterLab /'), kernel "Rust (fastai)"
  data:         $FASTAI_HOME ($(du -sh "$FASTAI_HOME" 2>/dev/null | cut -f1))
  venv:         $VENV ($(du -sh "$VENV" 2>/dev/null | cut -f1))
  browser test: $BROWSER_LINE

Next:
  open the notebooks:  .venv/bin/jupyter lab notebooks/
  run all the tests:   ./install.sh --browser-tests && tests/run.sh
EOF
