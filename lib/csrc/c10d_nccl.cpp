// The NCCL half of the c10d shim: makes a ProcessGroupNCCL (libtorch_cuda.so) over a store made
// by c10d.cpp. Built by lib/build.rs into its own shared library, only when the libtorch is the
// CUDA build and the CUDA/NCCL headers are found, and loaded by Rust (dlopen) only when a run asks
// for NCCL - so the library itself never needs libtorch_cuda.so, libcudart or libnccl to start.
// The group it returns is driven by c10d.cpp's collectives, like a Gloo group.

#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>

#include "c10d_common.h"

using fastai_c10d::GroupBox;
using fastai_c10d::guarded;
using fastai_c10d::StoreBox;

extern "C" {

// A NCCL process group of `size` ranks over `store`; its collectives run on CUDA tensors of the
// current device (set it to the rank's GPU first).
char* fastai_c10d_nccl(void* store, int rank, int size, int64_t timeout_ms, void** out) {
  return guarded([&] {
    auto timeout = std::chrono::milliseconds(timeout_ms);
    auto options = c10d::ProcessGroupNCCL::Options::create();
    options->timeout = timeout;
    auto group = c10::make_intrusive<c10d::ProcessGroupNCCL>(
        static_cast<StoreBox*>(store)->store, rank, size, options);
    *out = new GroupBox{group, timeout};
  });
}

} // extern "C"
