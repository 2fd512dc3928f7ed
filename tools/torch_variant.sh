# Which libtorch (PyTorch wheel) to install for this machine's NVIDIA driver. Sourced by install.sh;
# `./install.sh --print-torch-plan` prints the choice and exits, which is how it is tested
# (tests/test_install_cuda_choice.py, with a fake nvidia-smi on PATH).
#
# libtorch 2.13.0 comes in these CUDA builds; the driver decides which one can run:
#
#   driver        variant  from                                         why
#   >= 580        cu130    PyPI (plain `pip install torch==2.13.0`)      CUDA 13.x needs driver >= 580
#   570 - 579     cu128    https://download.pytorch.org/whl/cu128       CUDA 12.8's own driver is >= 570.26
#   525 - 569     cu126    https://download.pytorch.org/whl/cu126       CUDA 12.6's own driver is >= 560.28.03;
#                                                                       525-559 run it through CUDA's minor
#                                                                       version compatibility (12.x: >= 525)
#   < 525         none     -                                            too old for any CUDA 12 build
#
# Sources: NVIDIA, "CUDA Compatibility", Minor Version Compatibility, Table 1 (CUDA 13.x: driver
# >= 580; CUDA 12.x: >= 525, < 580 through minor version compatibility),
# https://docs.nvidia.com/deploy/cuda-compatibility/minor-version-compatibility.html; the CUDA 12.6
# and 12.8 toolkit release notes' driver table (Table 3, "CUDA Toolkit and Corresponding Driver
# Versions"), https://docs.nvidia.com/cuda/cuda-toolkit-release-notes/. Whether PyTorch's index
# carries 2.13.0 for cu126 and cu128 has not been checked from here (it is not reachable here).
#
# Overrides (environment):
#   FASTAI_TORCH_VARIANT=cpu|cu126|cu128|cu130   skip the driver check and install this build
#   FASTAI_TORCH_INDEX=URL                       the package index for the cu126/cu128 builds
#                                                (default https://download.pytorch.org/whl/<variant>)
#   NVIDIA_SMI=path                              the nvidia-smi to ask (default: the one on PATH)

TORCH_INDEX_ROOT=https://download.pytorch.org/whl

# torch_plan VERSION WANT: WANT is cpu, cuda or auto (no --cpu/--cuda given). Sets
#   TORCH_VARIANT  cpu | cu126 | cu128 | cu130
#   TORCH_SPEC     the pip requirement (torch==2.13.0, or torch==2.13.0+cu126 from the index)
#   TORCH_INDEX    the extra package index for it ("" = the default index, PyPI)
#   TORCH_DRIVER   the driver version nvidia-smi gave ("" when none)
#   TORCH_WHY      one line saying why
# Returns 1 (with TORCH_WHY saying what to do) when no build can run with this driver.
torch_plan() {
  local version=$1 want=$2 smi=${NVIDIA_SMI:-nvidia-smi} major cuda
  TORCH_VARIANT="" TORCH_SPEC="" TORCH_INDEX="" TORCH_DRIVER="" TORCH_WHY=""
  if [ -n "${FASTAI_TORCH_VARIANT:-}" ]; then
    case "$FASTAI_TORCH_VARIANT" in
      cpu|cu126|cu128|cu130) TORCH_VARIANT=$FASTAI_TORCH_VARIANT
        TORCH_WHY="FASTAI_TORCH_VARIANT=$FASTAI_TORCH_VARIANT" ;;
      *) TORCH_WHY="FASTAI_TORCH_VARIANT must be cpu, cu126, cu128 or cu130 (not '$FASTAI_TORCH_VARIANT')"
        return 1 ;;
    esac
  elif [ "$want" = cpu ]; then
    TORCH_VARIANT=cpu TORCH_WHY="asked for (--cpu)"
  else
    if command -v "$smi" >/dev/null 2>&1; then
      TORCH_DRIVER=$("$smi" --query-gpu=driver_version --format=csv,noheader 2>/dev/null | head -n1 | tr -d ' \r')
      case "$TORCH_DRIVER" in [0-9]*) ;; *) TORCH_DRIVER="" ;; esac
      if [ -z "$TORCH_DRIVER" ]; then
        # older tools: the header's "CUDA Version: 12.4" is the newest CUDA the driver runs
        cuda=$("$smi" 2>/dev/null | sed -n 's/.*CUDA Version: *\([0-9][0-9]*\.[0-9][0-9]*\).*/\1/p' | head -n1)
      fi
    fi
    major=${TORCH_DRIVER%%.*}
    if [ -z "$TORCH_DRIVER" ] && [ -z "${cuda:-}" ]; then
      if [ "$want" = cuda ]; then
        TORCH_VARIANT=cu130 TORCH_WHY="asked for (--cuda); no NVIDIA driver answered here, so the newest build (needs driver >= 580 where it runs)"
      else
        TORCH_VARIANT=cpu
        if command -v "$smi" >/dev/null 2>&1; then
          TORCH_WHY="nvidia-smi is there but did not answer (is the NVIDIA driver loaded?): the CPU build"
        else
          TORCH_WHY="no NVIDIA driver (no nvidia-smi): the CPU build"
        fi
      fi
    elif [ -n "$TORCH_DRIVER" ]; then
      if [ "$major" -ge 580 ]; then TORCH_VARIANT=cu130 TORCH_WHY="NVIDIA driver $TORCH_DRIVER (>= 580 runs CUDA 13)"
      elif [ "$major" -ge 570 ]; then TORCH_VARIANT=cu128 TORCH_WHY="NVIDIA driver $TORCH_DRIVER (570-579 runs CUDA 12.8, not 13)"
      elif [ "$major" -ge 525 ]; then TORCH_VARIANT=cu126 TORCH_WHY="NVIDIA driver $TORCH_DRIVER (525-569 runs CUDA 12.6, not 13)"
      fi
    else
      case "$cuda" in
        1[3-9].*|[2-9][0-9].*) TORCH_VARIANT=cu130 TORCH_WHY="the driver runs CUDA $cuda" ;;
        12.[89]) TORCH_VARIANT=cu128 TORCH_WHY="the driver runs CUDA $cuda (not 13)" ;;
        12.*) TORCH_VARIANT=cu126 TORCH_WHY="the driver runs CUDA $cuda (not 13)" ;;
      esac
    fi
    if [ -z "$TORCH_VARIANT" ]; then
      TORCH_WHY="NVIDIA driver ${TORCH_DRIVER:-for CUDA $cuda} is too old for libtorch $version, whose oldest CUDA build (12.6) needs driver >= 525 (>= 580 for the default CUDA 13 build). Upgrade the driver (e.g. 'sudo apt install nvidia-driver-580', or your cloud image's newer driver), or install the CPU build: ./install.sh --cpu"
      return 1
    fi
  fi
  case "$TORCH_VARIANT" in
    cpu|cu130) TORCH_SPEC="torch==$version" ;;
    *) TORCH_SPEC="torch==$version+$TORCH_VARIANT"
       TORCH_INDEX=${FASTAI_TORCH_INDEX:-$TORCH_INDEX_ROOT/$TORCH_VARIANT} ;;
  esac
  return 0
}
