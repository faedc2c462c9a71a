// Internal: the micro-kernel function types (not pointers) and the declarations of every variant in
// manifest.inc. Kernels are plain functions over raw pointers (no templates, no STL), so
// an ISA translation unit exports nothing but its entry points (see bits.h).
#pragma once

#include <climits>
#include <cstdint>

#include "bnnkit/bits.h"
#include "bnnkit/kernels.h"

namespace bnnkit {

struct BMaxPoolShape;

// Fused output transform for one output pixel (see output_transform.h): popcounts of
// `n` channels -> d = k_bits - 2 * popcount - correction[o] -> int32 / float / bits.
struct EpilogueParams {
  std::int64_t n = 0;
  std::int32_t k_bits = 0;
  const std::int32_t* correction = nullptr;  // n values, or nullptr (no padded taps)
  const float* multiplier = nullptr;         // n values (float output)
  const float* bias = nullptr;               // n values (float output)
  float clamp_min = 0.0f, clamp_max = 0.0f;  // float output
  std::int32_t acc_min = INT32_MIN, acc_max = INT32_MAX;  // float output: clamp of d first
  const std::int32_t* sign = nullptr;        // n values of +-1 (bit output)
  const std::int32_t* threshold = nullptr;   // n values: bit = (sign * d < threshold)
};

// The output transform fused into a bgemm_o8 call (float or bit output; rules (1)-(3) of
// output_transform.h, the same bits as the epilogue kernels): the call's channel j is
// channel channel0 + j of the layer, whose per-channel arrays are those of `p`;
// p.correction (per channel, or null) applies to every pixel of the call alike. Pixel i's
// outputs are written at out + i * out_stride (floats, or words with bit i%32 of word
// i/32 for channel i); bit output needs channel0 % 32 == 0.
struct O8Fused {
  const EpilogueParams* p = nullptr;
  OutputKind kind = OutputKind::kFloat;
  void* out = nullptr;
  std::int64_t out_stride = 0;
  std::int64_t channel0 = 0;
};

namespace ukernel {
using pack_f32 = void(const float* x, std::int64_t rows, std::int64_t channels,
                          word_t* out);
using pack_s8 = void(const std::int8_t* x, std::int64_t rows, std::int64_t channels,
                         word_t* out);
using unpack_f32 = void(const word_t* w, std::int64_t rows, std::int64_t channels,
                            float* out);
using unpack_s8 = void(const word_t* w, std::int64_t rows, std::int64_t channels,
                           std::int8_t* out);
// c[i * c_stride + j] = sum_{k < k64} popcount(a[i * a_stride + k] ^ w[j * w_stride + k])
// for i < m, j < n. Strides are in elements. Requires k64 * 64 < 2^31.
using bgemm = void(std::int64_t m, std::int64_t n, std::int64_t k64,
                       const std::uint64_t* a, std::int64_t a_stride,
                       const std::uint64_t* w, std::int64_t w_stride, std::int32_t* c,
                       std::int64_t c_stride);
// The same product with the weights packed for vectorizing over output channels (one
// SIMD lane per channel, no horizontal sums, no padding of k64): channel j's word k is at
// w[(j / 8) * k64 * 8 + k * 8 + j % 8] (see pack_weights_o8), lanes past n are zero. The
// rows of `a` come in `segments` equal parts of L = k64 / segments words, each read from
// its own base, so a conv can read pixels in place (one part per kernel row):
//   c[i * c_stride + j] = sum_{s, k < L} popcount(a[s][i * a_stride + k] ^ w_j[s * L + k])
// With `fused` set, the kernel applies the output transform itself and writes outputs
// instead of popcounts (see O8Fused; `c` is not used then).
using bgemm_o8 = void(std::int64_t m, std::int64_t n, std::int64_t k64, std::int64_t segments,
                          const std::uint64_t* const* a, std::int64_t a_stride,
                          const std::uint64_t* w, std::int32_t* c, std::int64_t c_stride,
                          const O8Fused* fused);
// out: n int32 (s32), n floats (f32) or words_for(n) words (b1).
using epilogue_s32 = void(const EpilogueParams& p, const std::int32_t* popcounts,
                              std::int32_t* out);
using epilogue_f32 = void(const EpilogueParams& p, const std::int32_t* popcounts,
                              float* out);
using epilogue_b1 = void(const EpilogueParams& p, const std::int32_t* popcounts,
                             word_t* out);
using maxpool = void(const BMaxPoolShape& shape, const word_t* in, word_t* out);
}  // namespace ukernel

// Declarations of every variant: `ukernel::<op> <name>;` declares a function of that type.
#define BNNKIT_UKERNEL(op, path, name, is_default) ukernel::op name;
#include "manifest.inc"
#undef BNNKIT_UKERNEL

}  // namespace bnnkit

namespace bnnkit {

// A bgemm of either weight layout: exactly one of `rows` / `o8` is set.
struct Bgemm {
  ukernel::bgemm* rows = nullptr;
  ukernel::bgemm_o8* o8 = nullptr;
};

// Packs (n, k64) weight rows (row stride k64) into the layout of ukernel::bgemm_o8:
// ceil(n / 8) * k64 * 8 words, zero lanes past n.
void pack_weights_o8(std::int64_t n, std::int64_t k64, const std::uint64_t* rows,
                     std::uint64_t* out);

// The kernels one path runs (its default variants, portable where it has none; a path
// with a default bgemm_o8 variant runs that instead of its rows bgemm).
struct KernelTable {
  KernelPath path;
  ukernel::pack_f32* pack_f32;
  ukernel::pack_s8* pack_s8;
  ukernel::unpack_f32* unpack_f32;
  ukernel::unpack_s8* unpack_s8;
  Bgemm bgemm;
  ukernel::epilogue_s32* epilogue_s32;
  ukernel::epilogue_f32* epilogue_f32;
  ukernel::epilogue_b1* epilogue_b1;
  ukernel::maxpool* maxpool;
};

// kAuto -> active_kernel_path(); throws std::runtime_error if the path is unsupported here.
KernelPath resolve_kernel_path(KernelPath path);
const KernelTable& kernel_table(KernelPath path);
// The bgemm / bgemm_o8 variant of `path` called `name`; throws std::invalid_argument
// listing the bgemm variants of that path when there is none.
Bgemm find_bgemm_variant(KernelPath path, const char* name);

}  // namespace bnnkit
