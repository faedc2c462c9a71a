// Kernel dispatch: CPU detection picks the best path at start-up, BNNKIT_KERNELS
// overrides it, set_active_kernel_path() switches it for tests. The tables are built
// from manifest.inc, so a new variant needs no change here.
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <string>

#include "bnnkit/cpu.h"
#include "bnnkit/kernels.h"
#include "kernels/ukernels.h"

namespace bnnkit {
namespace {

const char* const kPathNames[kNumKernelPaths] = {"reference", "portable", "avx2", "avx512",
                                                 "neon"};

std::string known_path_names() {
  std::string out;
  for (const char* n : kPathNames) out += std::string(out.empty() ? "" : ", ") + n;
  return out;
}

bool compiled_in(KernelPath path) {
  switch (path) {
    case KernelPath::kAvx2:
    case KernelPath::kAvx512:
#if defined(BNNKIT_HAVE_X86)
      return true;
#else
      return false;
#endif
    case KernelPath::kNeon:
#if defined(BNNKIT_HAVE_NEON)
      return true;
#else
      return false;
#endif
    default:
      return true;
  }
}

struct Entry {
  const char* op;
  KernelPath path;
  const char* name;
  bool is_default;
  void* fn;
};

const Entry kManifest[] = {
#define BNNKIT_UKERNEL(op, path, name, is_default) \
  {#op, KernelPath::path, #name, is_default, reinterpret_cast<void*>(&name)},
#include "kernels/manifest.inc"
#undef BNNKIT_UKERNEL
};

// The default variant of `op` for `path`, falling back to the portable one.
void* find_default(const char* op, KernelPath path) {
  for (const Entry& e : kManifest)
    if (e.path == path && e.is_default && std::strcmp(e.op, op) == 0) return e.fn;
  if (path != KernelPath::kPortable) return find_default(op, KernelPath::kPortable);
  throw std::logic_error(std::string("kernel manifest: no portable variant of ") + op);
}

template <typename Fn>
Fn* pick(const char* op, KernelPath path) {
  return reinterpret_cast<Fn*>(find_default(op, path));
}

bool is_bgemm_op(const char* op) {
  return std::strcmp(op, "bgemm") == 0 || std::strcmp(op, "bgemm_o8") == 0;
}

Bgemm as_bgemm(const Entry& e) {
  Bgemm g;
  if (std::strcmp(e.op, "bgemm_o8") == 0) g.o8 = reinterpret_cast<ukernel::bgemm_o8*>(e.fn);
  else g.rows = reinterpret_cast<ukernel::bgemm*>(e.fn);
  return g;
}

// A path's own default bgemm_o8 if it has one (it has no portable fallback), else its
// default rows bgemm.
Bgemm pick_bgemm(KernelPath path) {
  for (const Entry& e : kManifest)
    if (e.path == path && e.is_default && std::strcmp(e.op, "bgemm_o8") == 0) return as_bgemm(e);
  Bgemm g;
  g.rows = pick<ukernel::bgemm>("bgemm", path);
  return g;
}

KernelTable make_table(KernelPath path) {
  return KernelTable{path,
                     pick<ukernel::pack_f32>("pack_f32", path),
                     pick<ukernel::pack_s8>("pack_s8", path),
                     pick<ukernel::unpack_f32>("unpack_f32", path),
                     pick<ukernel::unpack_s8>("unpack_s8", path),
                     pick_bgemm(path),
                     pick<ukernel::epilogue_s32>("epilogue_s32", path),
                     pick<ukernel::epilogue_f32>("epilogue_f32", path),
                     pick<ukernel::epilogue_b1>("epilogue_b1", path),
                     pick<ukernel::maxpool>("maxpool", path)};
}

// Active path state: -1 = not chosen yet; otherwise a KernelPath value. An invalid
// BNNKIT_KERNELS leaves an error message that every call reports until overridden.
std::mutex g_mutex;
int g_active = -1;
std::string g_env_error;

void choose_initial_path_locked() {
  if (g_active >= 0 || !g_env_error.empty()) return;
  const char* env = std::getenv("BNNKIT_KERNELS");
  if (env == nullptr || *env == '\0') {
    g_active = static_cast<int>(best_kernel_path());
    return;
  }
  try {
    const KernelPath path = parse_kernel_path(env);
    const std::string why = kernel_path_unsupported_reason(path);
    if (!why.empty()) throw std::runtime_error(why);
    g_active = static_cast<int>(path);
  } catch (const std::exception& e) {
    g_env_error = std::string("BNNKIT_KERNELS=") + env + ": " + e.what();
  }
}

}  // namespace

const char* kernel_path_name(KernelPath path) {
  const int i = static_cast<int>(path);
  if (path == KernelPath::kAuto) return "auto";
  if (i < 0 || i >= kNumKernelPaths) throw std::invalid_argument("invalid KernelPath value");
  return kPathNames[i];
}

KernelPath parse_kernel_path(const std::string& name) {
  for (int i = 0; i < kNumKernelPaths; ++i)
    if (name == kPathNames[i]) return static_cast<KernelPath>(i);
  throw std::invalid_argument("unknown kernel path '" + name + "'; known paths: " +
                              known_path_names());
}

std::string kernel_path_unsupported_reason(KernelPath path) {
  const std::string name = kernel_path_name(path);
  if (path == KernelPath::kAuto) return "";
  if (!compiled_in(path)) return "kernel path '" + name + "' is not compiled for this architecture";
  const CpuFeatures& f = cpu_features();
  if (path == KernelPath::kAvx2 && !f.has_avx2_path())
    return "kernel path 'avx2' needs avx2+fma+bmi2+popcnt with OS ymm support; CPU has: " +
           f.to_string();
  if (path == KernelPath::kAvx512 && !f.has_avx512_path())
    return "CPU lacks avx512vpopcntdq (the 'avx512' path needs avx512f+bw+vl+vpopcntdq with "
           "OS zmm support); CPU has: " + f.to_string();
  if (path == KernelPath::kNeon && !f.neon) return "CPU lacks NEON";
  return "";
}

std::vector<KernelPath> supported_kernel_paths() {
  std::vector<KernelPath> out;
  for (int i = 0; i < kNumKernelPaths; ++i)
    if (kernel_path_supported(static_cast<KernelPath>(i))) out.push_back(static_cast<KernelPath>(i));
  return out;
}

KernelPath best_kernel_path() {
  for (KernelPath p : {KernelPath::kAvx512, KernelPath::kAvx2, KernelPath::kNeon})
    if (kernel_path_supported(p)) return p;
  return KernelPath::kPortable;
}

KernelPath active_kernel_path() {
  std::lock_guard<std::mutex> lock(g_mutex);
  choose_initial_path_locked();
  if (g_active < 0) throw std::runtime_error(g_env_error);
  return static_cast<KernelPath>(g_active);
}

void set_active_kernel_path(KernelPath path) {
  if (path == KernelPath::kAuto) path = best_kernel_path();
  const std::string why = kernel_path_unsupported_reason(path);
  if (!why.empty()) throw std::runtime_error(why);
  std::lock_guard<std::mutex> lock(g_mutex);
  g_active = static_cast<int>(path);
  g_env_error.clear();
}

std::vector<KernelInfo> kernel_manifest() {
  std::vector<KernelInfo> out;
  for (const Entry& e : kManifest) out.push_back({e.op, e.path, e.name, e.is_default});
  return out;
}

KernelPath resolve_kernel_path(KernelPath path) {
  if (path == KernelPath::kAuto) return active_kernel_path();
  const std::string why = kernel_path_unsupported_reason(path);
  if (!why.empty()) throw std::runtime_error(why);
  return path;
}

const KernelTable& kernel_table(KernelPath path) {
  static const KernelTable tables[kNumKernelPaths] = {
      make_table(KernelPath::kReference), make_table(KernelPath::kPortable),
      make_table(KernelPath::kAvx2), make_table(KernelPath::kAvx512),
      make_table(KernelPath::kNeon)};
  return tables[static_cast<int>(resolve_kernel_path(path))];
}

Bgemm find_bgemm_variant(KernelPath path, const char* name) {
  path = resolve_kernel_path(path);
  std::string known;
  for (const Entry& e : kManifest) {
    if (e.path != path || !is_bgemm_op(e.op)) continue;
    if (std::strcmp(e.name, name) == 0) return as_bgemm(e);
    known += std::string(known.empty() ? "" : ", ") + e.name;
  }
  throw std::invalid_argument(std::string("no bgemm variant '") + name + "' on path '" +
                              kernel_path_name(path) + "'; known: " + known);
}

void pack_weights_o8(std::int64_t n, std::int64_t k64, const std::uint64_t* rows,
                     std::uint64_t* out) {
  const std::int64_t blocks = (n + 7) / 8;
  for (std::int64_t b = 0; b < blocks; ++b)
    for (std::int64_t k = 0; k < k64; ++k)
      for (std::int64_t l = 0; l < 8; ++l) {
        const std::int64_t j = 8 * b + l;
        out[(b * k64 + k) * 8 + l] = j < n ? rows[j * k64 + k] : 0;
      }
}

// ---- packing entry points ---------------------------------------------------------------

namespace {
void check_rows(std::int64_t rows, std::int64_t channels) {
  if (rows < 0 || channels < 1)
    throw std::invalid_argument("pack/unpack: need rows >= 0 and channels >= 1, got rows=" +
                                std::to_string(rows) + " channels=" + std::to_string(channels));
}
}  // namespace

void pack_rows(const float* x, std::int64_t rows, std::int64_t channels, word_t* out,
               KernelPath path) {
  check_rows(rows, channels);
  kernel_table(path).pack_f32(x, rows, channels, out);
}
void pack_rows(const std::int8_t* x, std::int64_t rows, std::int64_t channels, word_t* out,
               KernelPath path) {
  check_rows(rows, channels);
  kernel_table(path).pack_s8(x, rows, channels, out);
}
void unpack_rows(const word_t* w, std::int64_t rows, std::int64_t channels, float* out,
                 KernelPath path) {
  check_rows(rows, channels);
  kernel_table(path).unpack_f32(w, rows, channels, out);
}
void unpack_rows(const word_t* w, std::int64_t rows, std::int64_t channels, std::int8_t* out,
                 KernelPath path) {
  check_rows(rows, channels);
  kernel_table(path).unpack_s8(w, rows, channels, out);
}

}  // namespace bnnkit
