// Portable popcount GEMM (2 pixels x 4 output channels per step, 64-bit words,
// popcount64 below), the portable output transforms and the word-AND max-pool.
#include <cstring>

#include "kernels/output_transform.h"
#include "kernels/ukernels.h"

namespace bnnkit {
namespace {

// Hardware popcount where the baseline ISA has one (AArch64, or x86 built with POPCNT);
// otherwise the branch-free SWAR count, which beats libgcc's table-driven __popcountdi2.
#if defined(__POPCNT__) || defined(__aarch64__) || defined(__ARM_NEON)
inline int popcount64(std::uint64_t x) { return __builtin_popcountll(x); }
#else
inline int popcount64(std::uint64_t x) {
  x = x - ((x >> 1) & 0x5555555555555555ULL);
  x = (x & 0x3333333333333333ULL) + ((x >> 2) & 0x3333333333333333ULL);
  x = (x + (x >> 4)) & 0x0F0F0F0F0F0F0F0FULL;
  return static_cast<int>((x * 0x0101010101010101ULL) >> 56);
}
#endif

// One MR x NR tile (MR <= 2, NR <= 4) over k64 words.
template <int MR, int NR>
void tile(std::int64_t k64, const std::uint64_t* a, std::int64_t a_stride,
          const std::uint64_t* w, std::int64_t w_stride, std::int32_t* c,
          std::int64_t c_stride) {
  std::int32_t acc[MR][NR] = {};
  for (std::int64_t k = 0; k < k64; ++k)
    for (int i = 0; i < MR; ++i) {
      const std::uint64_t x = a[i * a_stride + k];
      for (int j = 0; j < NR; ++j) acc[i][j] += popcount64(x ^ w[j * w_stride + k]);
    }
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) c[i * c_stride + j] = acc[i][j];
}

template <int MR>
void row_block(std::int64_t n, std::int64_t k64, const std::uint64_t* a,
               std::int64_t a_stride, const std::uint64_t* w, std::int64_t w_stride,
               std::int32_t* c, std::int64_t c_stride) {
  std::int64_t j = 0;
  for (; j + 4 <= n; j += 4)
    tile<MR, 4>(k64, a, a_stride, w + j * w_stride, w_stride, c + j, c_stride);
  for (; j < n; ++j) tile<MR, 1>(k64, a, a_stride, w + j * w_stride, w_stride, c + j, c_stride);
}

}  // namespace

void bnn_b1_gemm_ukernel_2x4__portable(std::int64_t m, std::int64_t n, std::int64_t k64,
                                       const std::uint64_t* a, std::int64_t a_stride,
                                       const std::uint64_t* w, std::int64_t w_stride,
                                       std::int32_t* c, std::int64_t c_stride) {
  std::int64_t i = 0;
  for (; i + 2 <= m; i += 2)
    row_block<2>(n, k64, a + i * a_stride, a_stride, w, w_stride, c + i * c_stride, c_stride);
  if (i < m) row_block<1>(n, k64, a + i * a_stride, a_stride, w, w_stride, c + i * c_stride, c_stride);
}

void bnn_s32_s32_dot_ukernel__portable(const EpilogueParams& p, const std::int32_t* pop,
                                       std::int32_t* out) {
  detail::epilogue_s32_loop(p, pop, out);
}
void bnn_s32_f32_minmax_ukernel__portable(const EpilogueParams& p, const std::int32_t* pop,
                                          float* out) {
  detail::epilogue_f32_loop(p, pop, out);
}
void bnn_s32_b1_threshold_ukernel__portable(const EpilogueParams& p,
                                            const std::int32_t* pop, word_t* out) {
  detail::epilogue_b1_loop(p, pop, out);
}

// max of +-1 values = AND of their bits over the valid window positions.
void bnn_b1_maxpool_ukernel__portable(const BMaxPoolShape& s, const word_t* in, word_t* out) {
  const std::int64_t words = words_for(s.channels), oh = s.out_h(), ow = s.out_w();
  for (std::int64_t n = 0; n < s.batch; ++n)
    for (std::int64_t oy = 0; oy < oh; ++oy)
      for (std::int64_t ox = 0; ox < ow; ++ox) {
        word_t* o = out + ((n * oh + oy) * ow + ox) * words;
        std::memset(o, 0xFF, words * 4);
        for (std::int64_t ky = 0; ky < s.kernel_h; ++ky) {
          const std::int64_t iy = oy * s.stride_h - s.pad_top + ky;
          if (iy < 0 || iy >= s.in_h) continue;
          for (std::int64_t kx = 0; kx < s.kernel_w; ++kx) {
            const std::int64_t ix = ox * s.stride_w - s.pad_left + kx;
            if (ix < 0 || ix >= s.in_w) continue;
            const word_t* x = in + ((n * s.in_h + iy) * s.in_w + ix) * words;
            for (std::int64_t w = 0; w < words; ++w) o[w] &= x[w];
          }
        }
      }
}

}  // namespace bnnkit
