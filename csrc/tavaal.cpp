// Schema of every tavaal op (the single TORCH_LIBRARY block) + the Python module stub.
//
// Implementations: csrc/cpu/*.cpp register TORCH_LIBRARY_IMPL(tavaal, CPU, m), and
// csrc/cuda/ops_cuda.cpp registers TORCH_LIBRARY_IMPL(tavaal, CUDA, m) when built with CUDA.
// The ops are callable as torch.ops.tavaal.* from Python and TorchScript, and from C++ through
// the dispatcher after linking this library (CMake target `tavaal_ops`) or
// torch.ops.load_library(...).
#include <torch/library.h>

#include "tavaal.h"

#ifdef TAVAAL_PYTHON_MODULE
#include <Python.h>
#endif

namespace tavaal {
bool with_cuda() {
#ifdef TAVAAL_WITH_CUDA
  return true;
#else
  return false;
#endif
}
}  // namespace tavaal

TORCH_LIBRARY(tavaal, m) {
  m.def(
      "topb(Tensor scores, int b, bool largest=False, Tensor? mask=None, bool nan_worst=False)"
      " -> (Tensor values, Tensor indices)");
  m.def(
      "kcenter_greedy(Tensor features, int b, Tensor? centers=None, int first=0,"
      " str metric=\"euclidean\") -> (Tensor indices, Tensor radii)");
  m.def(
      "score_topb(Tensor mu, Tensor r, Tensor[] weights, Tensor[] biases, int b,"
      " bool largest=False, str precision=\"fp32\", int chunk_size=0, bool return_scores=False)"
      " -> (Tensor values, Tensor indices, Tensor scores)");
  m.def(  // k-means++ D^2 seeding (BADGE); contract in csrc/kmeanspp_common.h
      "kmeanspp(Tensor x, Tensor? y, Tensor uniforms, str init=\"uniform\")"
      " -> (Tensor indices, Tensor potential)");
  m.def("with_cuda() -> bool", &tavaal::with_cuda);
}

#ifdef TAVAAL_PYTHON_MODULE
// `import tavaal._C` loads this shared library, which runs the static registrations above.
static struct PyModuleDef tavaal_c_module = {PyModuleDef_HEAD_INIT, "_C",
                                             "tavaal C++/CUDA ops (see torch.ops.tavaal)", -1, nullptr};
PyMODINIT_FUNC PyInit__C(void) { return PyModule_Create(&tavaal_c_module); }
#endif
