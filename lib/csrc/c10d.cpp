// A C interface to PyTorch's distributed engine (c10d) inside the libtorch that tch links:
// rendezvous stores, the Gloo process group and the collectives data-parallel training needs.
// Rust calls it through lib/src/distributed/c10d.rs.
//
// Conventions: every function that can fail returns NULL on success or a malloc'd, NUL-terminated
// error message (free it with fastai_c10d_free_string). No C++ exception crosses this boundary:
// each entry point catches everything (c10::Error, std::exception, anything else). Objects are
// handed out as opaque boxes holding c10's reference-counted pointers; *_free drops one box.
// Tensors come in as `at::Tensor*`, the representation tch's C glue uses for `tch::Tensor`.
//
// Built by lib/build.rs with USE_DISTRIBUTED and USE_C10D_GLOO defined (without them the c10d
// headers compile to nothing) against the wheel's headers plus csrc/gloo_decls (see its README).

#include <torch/csrc/distributed/c10d/HashStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include "c10d_common.h"

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

using fastai_c10d::copy_message;
using fastai_c10d::GroupBox;
using fastai_c10d::guarded;
using fastai_c10d::StoreBox;

std::vector<at::Tensor> tensors_of(at::Tensor** tensors, size_t n) {
  std::vector<at::Tensor> out;
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    out.push_back(*tensors[i]); // shares storage: the collective writes in place
  }
  return out;
}

c10d::ReduceOp reduce_op(int op) {
  switch (op) {
    case 0:
      return c10d::ReduceOp(c10d::ReduceOp::SUM);
    case 1:
      return c10d::ReduceOp(c10d::ReduceOp::PRODUCT);
    case 2:
      return c10d::ReduceOp(c10d::ReduceOp::MIN);
    case 3:
      return c10d::ReduceOp(c10d::ReduceOp::MAX);
    default:
      TORCH_CHECK(false, "unknown reduce op ", op);
  }
}

// Waits for a collective; Gloo's own timeout (the group's) ends a wait on a silent peer, and a
// peer whose connection closed fails it at once.
void finish(const c10::intrusive_ptr<c10d::Work>& work) {
  work->wait();
}

} // namespace

extern "C" {

void fastai_c10d_free_string(char* s) {
  std::free(s);
}

// A TCPStore: the server when `is_server` (rank 0), a client otherwise. Clients retry connecting
// until `timeout_ms`; the server waits for `world_size` clients when `wait_workers`.
char* fastai_c10d_tcp_store(
    const char* host,
    uint16_t port,
    int world_size,
    int is_server,
    int wait_workers,
    int64_t timeout_ms,
    void** out) {
  return guarded([&] {
    c10d::TCPStoreOptions opts;
    opts.port = port;
    opts.isServer = is_server != 0;
    opts.numWorkers = static_cast<size_t>(world_size);
    opts.waitWorkers = wait_workers != 0;
    opts.timeout = std::chrono::milliseconds(timeout_ms);
    auto store = c10::make_intrusive<c10d::TCPStore>(std::string(host), opts);
    *out = new StoreBox{store};
  });
}

// An in-memory store, shared by process groups of threads of one process.
char* fastai_c10d_hash_store(void** out) {
  return guarded([&] { *out = new StoreBox{c10::make_intrusive<c10d::HashStore>()}; });
}

void fastai_c10d_store_free(void* store) {
  delete static_cast<StoreBox*>(store);
}

char* fastai_c10d_store_set(void* store, const char* key, const uint8_t* data, size_t len) {
  return guarded([&] {
    std::vector<uint8_t> value(data, data + len);
    static_cast<StoreBox*>(store)->store->set(std::string(key), value);
  });
}

// Waits (up to the store's timeout) for `key`, then returns its value in a malloc'd buffer.
char* fastai_c10d_store_get(void* store, const char* key, uint8_t** data, size_t* len) {
  return guarded([&] {
    auto value = static_cast<StoreBox*>(store)->store->get(std::string(key));
    *len = value.size();
    *data = static_cast<uint8_t*>(std::malloc(value.size() > 0 ? value.size() : 1));
    TORCH_CHECK(*data != nullptr, "out of memory");
    if (!value.empty()) {
      std::memcpy(*data, value.data(), value.size());
    }
  });
}

char* fastai_c10d_store_add(void* store, const char* key, int64_t amount, int64_t* result) {
  return guarded(
      [&] { *result = static_cast<StoreBox*>(store)->store->add(std::string(key), amount); });
}

void fastai_c10d_free_bytes(uint8_t* data) {
  std::free(data);
}

// A Gloo process group over `store`. Its transport binds to `interface` when given (a network
// interface name, as GLOO_SOCKET_IFNAME), else to the address `hostname` resolves to.
char* fastai_c10d_gloo(
    void* store,
    int rank,
    int size,
    int64_t timeout_ms,
    const char* hostname,
    const char* interface,
    void** out) {
  return guarded([&] {
    auto timeout = std::chrono::milliseconds(timeout_ms);
    auto options = c10d::ProcessGroupGloo::Options::create(timeout);
    if (interface != nullptr && interface[0] != '\0') {
      options->devices.push_back(
          c10d::ProcessGroupGloo::createDeviceForInterface(std::string(interface)));
    } else {
      options->devices.push_back(
          c10d::ProcessGroupGloo::createDeviceForHostname(std::string(hostname)));
    }
    auto group = c10::make_intrusive<c10d::ProcessGroupGloo>(
        static_cast<StoreBox*>(store)->store, rank, size, options);
    *out = new GroupBox{group, timeout};
  });
}

void fastai_c10d_group_free(void* group) {
  delete static_cast<GroupBox*>(group);
}

// All-reduces each tensor in place (every rank ends with the reduction of all ranks' values);
// the tensors may differ in size and type.
char* fastai_c10d_all_reduce(void* group, at::Tensor** tensors, size_t n, int op) {
  return guarded([&] {
    auto box = static_cast<GroupBox*>(group);
    c10d::AllreduceOptions opts;
    opts.reduceOp = reduce_op(op);
    opts.timeout = box->timeout;
    // one collective per tensor: a list given to Gloo means one tensor per device, all alike
    for (size_t i = 0; i < n; ++i) {
      std::vector<at::Tensor> one{*tensors[i]};
      finish(box->backend->allreduce(one, opts));
    }
  });
}

// Overwrites each tensor with rank `root`'s.
char* fastai_c10d_broadcast(void* group, at::Tensor** tensors, size_t n, int root) {
  return guarded([&] {
    auto box = static_cast<GroupBox*>(group);
    c10d::BroadcastOptions opts;
    opts.rootRank = root;
    opts.timeout = box->timeout;
    for (size_t i = 0; i < n; ++i) {
      std::vector<at::Tensor> one{*tensors[i]};
      finish(box->backend->broadcast(one, opts));
    }
  });
}

// outputs[r] receives rank r's `input` (n = world size, each output shaped as the input).
char* fastai_c10d_all_gather(void* group, at::Tensor* input, at::Tensor** outputs, size_t n) {
  return guarded([&] {
    auto box = static_cast<GroupBox*>(group);
    std::vector<std::vector<at::Tensor>> out{tensors_of(outputs, n)};
    std::vector<at::Tensor> in{*input};
    c10d::AllgatherOptions opts;
    opts.timeout = box->timeout;
    finish(box->backend->allgather(out, in, opts));
  });
}

char* fastai_c10d_barrier(void* group) {
  return guarded([&] {
    auto box = static_cast<GroupBox*>(group);
    c10d::BarrierOptions opts;
    opts.timeout = box->timeout;
    finish(box->backend->barrier(opts));
  });
}

} // extern "C"
