// tavaal_scorer: the Python-free deployment path of `python -m tavaal.score`.
//
// Loads the TorchScript artifacts written by `python -m tavaal.export` (libtorch only, no
// Python), memory-maps a pool stored as one .npy file, runs the combined scorer graph batch
// by batch and keeps a running top-b through the tavaal C++ ops (torch.ops.tavaal.score_topb
// for the fused discriminator + top-b, tavaal::topb to merge), then prints or writes the
// selected rows as CSV: rank,id,score (id = row number in the .npy).
//
//   tavaal_scorer ARTIFACTS_DIR POOL.npy --budget B [--method tavaal|vaal|lloss]
//                 [--batch-size 256] [--threads T] [--out FILE.csv] [--bf16]
//
// Pool dtypes: float32 (taken as normalised model input), float16, uint8 (raw pixels,
// normalised by the exported normalize.pt: x/255, then (x - mean) / std). The sample shape
// must equal the manifest's input shape (C, H, W) or (D,). Selection: lowest D(r, mu)
// (tavaal, vaal) or highest predicted loss (lloss), ties to the lower row -- the same
// picks as the Python scorer. Exit codes: 0 ok, 2 bad arguments/inputs, 1 other errors.
#include <ATen/autocast_mode.h>
#include <torch/script.h>
#include <torch/torch.h>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// ------------------------------------------------------------------------------ .npy reader
struct NpyArray {
  void* map = nullptr;
  size_t map_size = 0;
  const char* data = nullptr;  // first element
  std::vector<int64_t> shape;
  at::ScalarType dtype = at::kFloat;
  size_t itemsize = 4;

  ~NpyArray() {
    if (map && map != MAP_FAILED) munmap(map, map_size);
  }
  int64_t rows() const { return shape.empty() ? 0 : shape[0]; }
  int64_t row_elems() const {
    int64_t n = 1;
    for (size_t i = 1; i < shape.size(); ++i) n *= shape[i];
    return n;
  }
};

void open_npy(const std::string& path, NpyArray& arr) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) throw UsageError("cannot open pool " + path);
  struct stat st {};
  fstat(fd, &st);
  arr.map_size = static_cast<size_t>(st.st_size);
  if (arr.map_size < 10) {
    ::close(fd);
    throw UsageError(path + ": not an .npy file (too short)");
  }
  arr.map = mmap(nullptr, arr.map_size, PROT_READ, MAP_SHARED, fd, 0);
  ::close(fd);
  if (arr.map == MAP_FAILED) throw UsageError("cannot memory-map " + path);
  const char* p = static_cast<const char*>(arr.map);
  if (std::memcmp(p, "\x93NUMPY", 6) != 0) throw UsageError(path + ": not an .npy file (bad magic)");
  const int major = static_cast<unsigned char>(p[6]);
  size_t header_len, header_start;
  if (major == 1) {
    header_len = static_cast<unsigned char>(p[8]) | (static_cast<unsigned char>(p[9]) << 8);
    header_start = 10;
  } else {
    header_len = 0;
    for (int i = 0; i < 4; ++i) header_len |= static_cast<size_t>(static_cast<unsigned char>(p[8 + i])) << (8 * i);
    header_start = 12;
  }
  const std::string header(p + header_start, header_len);
  std::smatch m;
  if (!std::regex_search(header, m, std::regex("'descr':\\s*'([^']+)'")))
    throw UsageError(path + ": .npy header without descr");
  const std::string descr = m[1];
  if (descr == "<f4") {
    arr.dtype = at::kFloat, arr.itemsize = 4;
  } else if (descr == "<f2") {
    arr.dtype = at::kHalf, arr.itemsize = 2;
  } else if (descr == "|u1") {
    arr.dtype = at::kByte, arr.itemsize = 1;
  } else {
    throw UsageError(path + ": unsupported dtype " + descr + " (use float32, float16 or uint8)");
  }
  if (std::regex_search(header, m, std::regex("'fortran_order':\\s*True")))
    throw UsageError(path + ": Fortran-ordered arrays are not supported");
  if (!std::regex_search(header, m, std::regex("'shape':\\s*\\(([^)]*)\\)")))
    throw UsageError(path + ": .npy header without shape");
  std::stringstream ss(m[1].str());
  std::string item;
  while (std::getline(ss, item, ',')) {
    item.erase(std::remove_if(item.begin(), item.end(), ::isspace), item.end());
    if (!item.empty()) arr.shape.push_back(std::stoll(item));
  }
  arr.data = p + header_start + header_len;
  const size_t need = static_cast<size_t>(arr.rows() * arr.row_elems()) * arr.itemsize;
  if (arr.shape.empty() || header_start + header_len + need > arr.map_size)
    throw UsageError(path + ": truncated .npy file");
}

// ------------------------------------------------------------------------- manifest bits
// The input shape is read from manifest.json with a regex (no JSON dependency).
std::vector<int64_t> manifest_input_shape(const std::string& dir) {
  std::ifstream f(dir + "/manifest.json");
  if (!f) throw UsageError(dir + " has no manifest.json: not a tavaal artifacts directory");
  std::stringstream buf;
  buf << f.rdbuf();
  const std::string text = buf.str();
  std::smatch m;
  if (!std::regex_search(text, m, std::regex("\"format_version\":\\s*([0-9]+)")) || m[1] != "1")
    throw UsageError(dir + "/manifest.json: unsupported artifacts format version (this scorer reads 1)");
  if (!std::regex_search(text, m, std::regex("\"input\":\\s*\\{[^}]*?\"shape\":\\s*\\[([^\\]]*)\\]")))
    throw UsageError(dir + "/manifest.json: no input shape");
  std::vector<int64_t> shape;
  std::stringstream ss(m[1].str());
  std::string item;
  while (std::getline(ss, item, ',')) {
    item.erase(std::remove_if(item.begin(), item.end(), ::isspace), item.end());
    if (!item.empty()) shape.push_back(std::stoll(item));
  }
  return shape;
}

bool file_exists(const std::string& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0;
}

// Discriminator weights of the (unfrozen) TorchScript scorer: ...discriminator.layers.<i>.{weight,bias}.
void discriminator_params(const torch::jit::Module& module, std::vector<at::Tensor>& ws, std::vector<at::Tensor>& bs) {
  std::map<int, at::Tensor> w, b;
  const std::regex re("(^|\\.)discriminator\\.layers\\.([0-9]+)\\.(weight|bias)$");
  for (const auto& p : module.named_parameters(/*recurse=*/true)) {
    std::smatch m;
    const std::string name = p.name;
    if (std::regex_search(name, m, re)) {
      const int idx = std::stoi(m[2]);
      (m[3] == "weight" ? w : b)[idx] = p.value.detach().to(at::kFloat).contiguous();
    }
  }
  if (w.empty() || w.size() != b.size()) throw std::runtime_error("scorer.pt: discriminator layers not found");
  for (auto& kv : w) ws.push_back(kv.second);
  for (auto& kv : b) bs.push_back(kv.second);
}

void usage() {
  std::cerr << "usage: tavaal_scorer ARTIFACTS_DIR POOL.npy --budget B [--method tavaal|vaal|lloss]\n"
               "                     [--batch-size 256] [--threads T] [--out FILE.csv] [--bf16]\n";
}

}  // namespace

int main(int argc, char** argv) {
  try {
    std::vector<std::string> pos;
    int64_t budget = -1, batch = 256;
    int threads = 0;
    std::string method = "tavaal", out;
    bool bf16 = false;
    for (int i = 1; i < argc; ++i) {
      const std::string a = argv[i];
      auto next = [&]() -> std::string {
        if (i + 1 >= argc) throw UsageError("missing value after " + a);
        return argv[++i];
      };
      if (a == "--budget") budget = std::stoll(next());
      else if (a == "--method") method = next();
      else if (a == "--batch-size") batch = std::stoll(next());
      else if (a == "--threads") threads = std::stoi(next());
      else if (a == "--out") out = next();
      else if (a == "--bf16") bf16 = true;
      else if (a == "-h" || a == "--help") { usage(); return 0; }
      else if (!a.empty() && a[0] == '-') throw UsageError("unknown option " + a);
      else pos.push_back(a);
    }
    if (pos.size() != 2) throw UsageError("expected ARTIFACTS_DIR and POOL.npy");
    if (budget < 1) throw UsageError("--budget must be >= 1");
    if (batch < 1) throw UsageError("--batch-size must be >= 1");
    if (method != "tavaal" && method != "vaal" && method != "lloss")
      throw UsageError("--method must be tavaal, vaal or lloss (coreset/random: use python -m tavaal.score)");
    if (threads > 0) at::set_num_threads(threads);
    const std::string dir = pos[0];
    const auto input_shape = manifest_input_shape(dir);

    NpyArray pool;
    open_npy(pos[1], pool);
    const int64_t n = pool.rows();
    if (n == 0) throw UsageError("the pool " + pos[1] + " is empty");
    if (n < budget)
      throw UsageError("the pool has " + std::to_string(n) + " samples but --budget is " + std::to_string(budget));
    std::vector<int64_t> sample(pool.shape.begin() + 1, pool.shape.end());
    if (sample != input_shape) {
      std::ostringstream msg;
      msg << "pool samples have shape " << c10::IntArrayRef(sample) << " but the artifacts expect "
          << c10::IntArrayRef(input_shape);
      throw UsageError(msg.str());
    }

    const std::string graph = dir + (method == "lloss" ? "/ranker.pt" : "/scorer.pt");
    if (!file_exists(graph)) throw UsageError(graph + " missing: these artifacts do not support --method " + method);
    c10::InferenceMode guard;
    torch::jit::Module module = torch::jit::load(graph);
    module.eval();
    std::vector<at::Tensor> ws, bs;
    if (method != "lloss") discriminator_params(module, ws, bs);
    torch::jit::Module frozen = torch::jit::freeze(module);
    torch::jit::Module normalize;
    const bool raw = pool.dtype == at::kByte;
    if (raw) {
      if (!file_exists(dir + "/normalize.pt")) throw UsageError("uint8 pool but no normalize.pt in " + dir);
      normalize = torch::jit::load(dir + "/normalize.pt");
      normalize.eval();
    }

    auto score_topb = c10::Dispatcher::singleton()
                          .findSchemaOrThrow("tavaal::score_topb", "")
                          .typed<std::tuple<at::Tensor, at::Tensor, at::Tensor>(
                              const at::Tensor&, const at::Tensor&, at::TensorList, at::TensorList, int64_t, bool,
                              c10::string_view, int64_t, bool)>();
    auto topb = c10::Dispatcher::singleton()
                    .findSchemaOrThrow("tavaal::topb", "")
                    .typed<std::tuple<at::Tensor, at::Tensor>(const at::Tensor&, int64_t, bool,
                                                              const c10::optional<at::Tensor>&, bool)>();

    std::vector<int64_t> full_shape(pool.shape.begin(), pool.shape.end());
    at::Tensor run_v = at::empty({0}, at::kFloat), run_i = at::empty({0}, at::kLong);
    const bool largest = method == "lloss";
    const auto t0 = std::chrono::steady_clock::now();
    double infer_s = 0, select_s = 0;
    for (int64_t s = 0; s < n; s += batch) {
      const int64_t e = std::min(n, s + batch);
      std::vector<int64_t> bshape = full_shape;
      bshape[0] = e - s;
      at::Tensor x = at::from_blob(const_cast<char*>(pool.data) + static_cast<size_t>(s * pool.row_elems()) * pool.itemsize,
                                   bshape, at::TensorOptions().dtype(pool.dtype))
                         .clone();
      auto ti = std::chrono::steady_clock::now();
      if (raw) x = normalize.forward({x}).toTensor();
      else x = x.to(at::kFloat);
      if (x.dim() == 4) x = x.contiguous(at::MemoryFormat::ChannelsLast);
      c10::IValue outv;
      if (bf16) {
        at::autocast::set_autocast_enabled(at::kCPU, true);
        at::autocast::set_autocast_dtype(at::kCPU, at::kBFloat16);
        outv = frozen.forward({x});
        at::autocast::set_autocast_enabled(at::kCPU, false);
        at::autocast::clear_cache();
      } else {
        outv = frozen.forward({x});
      }
      auto outs = outv.toTuple()->elements();
      auto tsel = std::chrono::steady_clock::now();
      infer_s += std::chrono::duration<double>(tsel - ti).count();
      const int64_t k = std::min<int64_t>(budget, e - s);
      at::Tensor v, idx;
      if (method == "lloss") {
        at::Tensor loss = outs[0].toTensor().to(at::kFloat).contiguous();
        std::tie(v, idx) = topb.call(loss, k, true, c10::nullopt, false);
      } else {
        at::Tensor mu, r;
        if (outs.size() == 4) {  // (loss, r, mu, score): TA-VAAL
          r = outs[1].toTensor().to(at::kFloat).contiguous();
          mu = outs[2].toTensor().to(at::kFloat).contiguous();
        } else {  // (mu, score): VAAL
          mu = outs[0].toTensor().to(at::kFloat).contiguous();
          r = at::empty({0}, at::kFloat);
        }
        if (method == "tavaal" && outs.size() != 4) throw UsageError("these artifacts are VAAL: use --method vaal");
        if (method == "vaal" && outs.size() == 4) throw UsageError("these artifacts are TA-VAAL: use --method tavaal");
        at::Tensor unused;
        std::tie(v, idx, unused) = score_topb.call(mu, r, ws, bs, k, false, "fp32", 0, false);
      }
      at::Tensor cat_v = at::cat({run_v, v.to(at::kFloat)}).contiguous();
      at::Tensor cat_i = at::cat({run_i, idx + s});
      const int64_t kk = std::min<int64_t>(budget, cat_v.size(0));
      at::Tensor mv, mpos;
      std::tie(mv, mpos) = topb.call(cat_v, kk, largest, c10::nullopt, false);
      run_v = mv;
      run_i = cat_i.index_select(0, mpos);
      select_s += std::chrono::duration<double>(std::chrono::steady_clock::now() - tsel).count();
    }
    const double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

    std::FILE* f = out.empty() ? stdout : std::fopen(out.c_str(), "w");
    if (!f) throw UsageError("cannot write " + out);
    std::fprintf(f, "rank,id,score\n");
    auto vi = run_v.accessor<float, 1>();
    auto ii = run_i.accessor<int64_t, 1>();
    for (int64_t k = 0; k < run_v.size(0); ++k) std::fprintf(f, "%lld,%lld,%.9g\n", (long long)k, (long long)ii[k], vi[k]);
    if (f != stdout) std::fclose(f);
    std::fprintf(stderr, "%s: selected %lld of %lld in %.2fs = %.1f samples/s (inference %.2fs, selection %.2fs)\n",
                 method.c_str(), (long long)run_v.size(0), (long long)n, total, n / std::max(total, 1e-9), infer_s,
                 select_s);
    return 0;
  } catch (const UsageError& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}
