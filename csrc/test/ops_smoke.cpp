// C++ smoke test of the CMake-built tavaal_ops library: the ops through the dispatcher and
// through a TorchScript function compiled from C++. Exit status 0 when every check passes.
// Usage: tavaal_ops_smoke [scripted_module.pt]  -- with a module, also loads it (saved from
// Python with torch.jit.save; its forward(x) calls the tavaal ops) and prints forward(arange).
#include <torch/csrc/jit/api/compilation_unit.h>
#include <torch/csrc/jit/frontend/resolver.h>
#include <torch/csrc/jit/frontend/sugared_value.h>
#include <torch/script.h>
#include <torch/torch.h>

#include <cstdio>
#include <iostream>

#include "tavaal.h"

static int failures = 0;
#define TCHECK(cond)                                              \
  do {                                                           \
    if (!(cond)) {                                               \
      std::fprintf(stderr, "CHECK failed: %s (line %d)\n", #cond, __LINE__); \
      ++failures;                                                \
    }                                                            \
  } while (0)

// Resolves `torch` to aten (as the default resolver) and `tavaal` to the tavaal op namespace,
// so TorchScript source compiled from C++ can call tavaal.topb(...) etc.
struct TavaalResolver : torch::jit::Resolver {
  std::shared_ptr<torch::jit::SugaredValue> resolveValue(const std::string& name, torch::jit::GraphFunction&,
                                                         const torch::jit::SourceRange&) override {
    if (name == "torch") return std::make_shared<torch::jit::BuiltinModule>("aten");
    if (name == "tavaal") return std::make_shared<torch::jit::BuiltinModule>("tavaal");
    return nullptr;
  }
  c10::TypePtr resolveType(const std::string&, const torch::jit::SourceRange&) override { return nullptr; }
};

int main(int argc, char** argv) {
  std::cout << "tavaal_ops with_cuda=" << tavaal::with_cuda() << std::endl;
  // 1. dispatcher
  auto topb = c10::Dispatcher::singleton()
                  .findSchemaOrThrow("tavaal::topb", "")
                  .typed<std::tuple<at::Tensor, at::Tensor>(const at::Tensor&, int64_t, bool,
                                                            const std::optional<at::Tensor>&, bool)>();
  at::Tensor s = torch::tensor({3.0f, 1.0f, 2.0f, 1.0f, 0.5f});
  auto res = topb.call(s, 3, false, std::nullopt, false);
  TCHECK((std::get<1>(res) == torch::tensor({4, 1, 3}, torch::kLong)).all().item<bool>());

  // 2. TorchScript compiled from C++, calling all three ops
  auto cu = std::make_shared<torch::jit::CompilationUnit>();
  cu->define(std::nullopt, R"JIT(
def smallest(x: Tensor, k: int) -> Tensor:
    return tavaal.topb(x, k, False, None, False)[1]

def coreset(x: Tensor, centers: Tensor, k: int) -> Tensor:
    return tavaal.kcenter_greedy(x, k, centers, 0, "euclidean")[0]

def select(mu: Tensor, ws: List[Tensor], bs: List[Tensor], k: int) -> Tensor:
    empty = torch.empty(0)
    return tavaal.score_topb(mu, empty, ws, bs, k, False, "fp32", 0, False)[1]
)JIT",
             std::make_shared<TavaalResolver>(), nullptr);
  at::Tensor idx = cu->run_method("smallest", s, 2).toTensor();
  TCHECK((idx == torch::tensor({4, 1}, torch::kLong)).all().item<bool>());

  at::Tensor x = torch::tensor({0.0f, 1.0f, 5.0f, 2.0f, 10.0f}).reshape({5, 1});
  at::Tensor picks = cu->run_method("coreset", x, torch::tensor({0}, torch::kLong), 3).toTensor();
  TCHECK((picks == torch::tensor({4, 2, 3}, torch::kLong)).all().item<bool>());

  // 1-layer "discriminator" w = [1, -1]: logit = mu0 - mu1 -> smallest probabilities first
  at::Tensor mu = torch::tensor({0.0f, 0.0f, 2.0f, 0.0f, 0.0f, 3.0f, 1.0f, 1.0f}).reshape({4, 2});
  c10::List<at::Tensor> ws({torch::tensor({1.0f, -1.0f}).reshape({1, 2})});
  c10::List<at::Tensor> bs({torch::zeros({1})});
  at::Tensor sel = cu->run_method("select", mu, ws, bs, 2).toTensor();
  TCHECK((sel == torch::tensor({2, 0}, torch::kLong)).all().item<bool>());

  // 3. a module scripted and saved from Python
  if (argc > 1) {
    torch::jit::Module module = torch::jit::load(argv[1]);
    at::Tensor out = module.forward({torch::arange(20, torch::kFloat).remainder(7)}).toTensor();
    std::cout << "module:";
    for (int64_t k = 0; k < out.numel(); ++k) std::cout << " " << out[k].item<int64_t>();
    std::cout << std::endl;
  }
  if (failures == 0) std::cout << "OK" << std::endl;
  return failures == 0 ? 0 : 1;
}
