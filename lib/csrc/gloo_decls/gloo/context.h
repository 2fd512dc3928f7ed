// Declarations only; see ../README.md. The members c10d's inline code names; never defined or
// constructed here (the real class lives in libtorch_cpu.so, and our code only holds pointers).
#pragma once

#include <chrono>

namespace gloo {
class Context {
 public:
  void setTimeout(std::chrono::milliseconds timeout);
};
} // namespace gloo
