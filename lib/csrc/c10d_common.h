// What the two halves of the c10d shim share: the opaque boxes handed to Rust and the
// exception-to-message wrapper. c10d.cpp (Gloo, always built) and c10d_nccl.cpp (NCCL, a shared
// library built only against a CUDA libtorch and loaded on demand) both include it, so a store
// made by one and a group made by the other are the same types.
#pragma once

#include <torch/csrc/distributed/c10d/Backend.hpp>
#include <torch/csrc/distributed/c10d/Store.hpp>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>

namespace fastai_c10d {

struct StoreBox {
  c10::intrusive_ptr<c10d::Store> store;
};

struct GroupBox {
  c10::intrusive_ptr<c10d::Backend> backend;
  std::chrono::milliseconds timeout;
};

inline char* copy_message(const std::string& message) {
  char* out = static_cast<char*>(std::malloc(message.size() + 1));
  if (out != nullptr) {
    std::memcpy(out, message.c_str(), message.size() + 1);
  }
  return out;
}

// Runs `body`, turning whatever it throws into a malloc'd message (NULL: it succeeded).
template <typename Body>
char* guarded(Body body) {
  try {
    body();
    return nullptr;
  } catch (const c10::Error& e) {
    return copy_message(e.what_without_backtrace());
  } catch (const std::exception& e) {
    return copy_message(e.what());
  } catch (...) {
    return copy_message("unknown C++ exception in c10d");
  }
}

} // namespace fastai_c10d
