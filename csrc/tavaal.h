// Public C++ header of the tavaal ops library (CMake target `tavaal_ops`).
//
// The ops are registered with the PyTorch dispatcher when the library is loaded; call them
// through torch::jit / the dispatcher (see csrc/test/ops_smoke.cpp), e.g.
//   auto op = c10::Dispatcher::singleton().findSchemaOrThrow("tavaal::topb", "")
//                 .typed<std::tuple<at::Tensor, at::Tensor>(const at::Tensor&, int64_t, bool,
//                                                           const std::optional<at::Tensor>&, bool)>();
// Linking against tavaal_ops and calling tavaal::with_cuda() guarantees the library is loaded.
#pragma once

namespace tavaal {
// true when the library was built with the CUDA kernels
bool with_cuda();
}  // namespace tavaal
