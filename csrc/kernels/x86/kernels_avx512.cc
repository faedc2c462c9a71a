// AVX-512 kernels (F + BW + VL + VPOPCNTDQ): bit-packing with mask compares, a popcount
// GEMM on 512-bit chunks with VPOPCNTQ (4 pixels x 4 output channels per step; 8 64-bit
// words per chunk, the k64 % 8 tail by masked loads of zeros), and the output transforms.
// Compiled with its own flags only; only the entry points have external linkage.
#include <immintrin.h>

#include "kernels/output_transform.h"
#include "kernels/ukernels.h"

namespace bnnkit {
namespace {

inline __mmask16 mask16(std::int64_t count) {  // low `count` (0..16) lanes
  return static_cast<__mmask16>(count >= 16 ? 0xFFFFu : (1u << count) - 1u);
}

// Sum of the 8 lanes (GCC 12's _mm512_reduce_add_epi64 warns about an undefined operand).
inline std::int64_t sum_lanes(__m512i v) {
  std::int64_t lanes[8];
  _mm512_storeu_si512(lanes, v);
  return lanes[0] + lanes[1] + lanes[2] + lanes[3] + lanes[4] + lanes[5] + lanes[6] + lanes[7];
}

template <typename T>
inline __m512i load_bytes(const T* p, std::int64_t count) {  // count in 0..64
  const __mmask64 m = count >= 64 ? ~0ULL : (1ULL << count) - 1ULL;
  return _mm512_maskz_loadu_epi8(m, p);
}

template <int MR, int NR>
void tile(std::int64_t k64, const std::uint64_t* a, std::int64_t as, const std::uint64_t* w,
          std::int64_t ws, std::int32_t* c, std::int64_t cs) {
  __m512i acc[MR][NR];
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) acc[i][j] = _mm512_setzero_si512();
  for (std::int64_t k = 0; k < k64; k += 8) {
    const __mmask8 m = static_cast<__mmask8>(k64 - k >= 8 ? 0xFF : (1u << (k64 - k)) - 1u);
    __m512i x[MR];
    for (int i = 0; i < MR; ++i) x[i] = _mm512_maskz_loadu_epi64(m, a + i * as + k);
    for (int j = 0; j < NR; ++j) {
      const __m512i wv = _mm512_maskz_loadu_epi64(m, w + j * ws + k);
      for (int i = 0; i < MR; ++i)
        acc[i][j] = _mm512_add_epi64(acc[i][j], _mm512_popcnt_epi64(_mm512_xor_si512(x[i], wv)));
    }
  }
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j)
      c[i * cs + j] = static_cast<std::int32_t>(sum_lanes(acc[i][j]));
}

template <int MR>
void rows(std::int64_t n, std::int64_t k64, const std::uint64_t* a, std::int64_t as,
          const std::uint64_t* w, std::int64_t ws, std::int32_t* c, std::int64_t cs) {
  std::int64_t j = 0;
  for (; j + 4 <= n; j += 4) tile<MR, 4>(k64, a, as, w + j * ws, ws, c + j, cs);
  for (; j < n; ++j) tile<MR, 1>(k64, a, as, w + j * ws, ws, c + j, cs);
}

}  // namespace

void bnn_f32_b1_pack_ukernel__avx512(const float* x, std::int64_t rows, std::int64_t channels,
                                     word_t* out) {
  const std::int64_t words = words_for(channels);
  const __m512 zero = _mm512_setzero_ps();
  for (std::int64_t r = 0; r < rows; ++r, x += channels, out += words)
    for (std::int64_t w = 0; w < words; ++w) {
      const std::int64_t c = 32 * w, left = channels - c;
      const __m512 v0 = _mm512_maskz_loadu_ps(mask16(left), x + c);
      const __m512 v1 = _mm512_maskz_loadu_ps(mask16(left > 16 ? left - 16 : 0), x + c + 16);
      const word_t lo = _mm512_cmp_ps_mask(v0, zero, _CMP_LT_OQ);
      const word_t hi = _mm512_cmp_ps_mask(v1, zero, _CMP_LT_OQ);
      out[w] = lo | (hi << 16);
    }
}

void bnn_s8_b1_pack_ukernel__avx512(const std::int8_t* x, std::int64_t rows,
                                    std::int64_t channels, word_t* out) {
  const std::int64_t words = words_for(channels);
  for (std::int64_t r = 0; r < rows; ++r, x += channels, out += words)
    for (std::int64_t w = 0; w < words; w += 2) {
      const std::int64_t c = 32 * w;
      const std::uint64_t bits = _mm512_movepi8_mask(load_bytes(x + c, channels - c));
      out[w] = static_cast<word_t>(bits);
      if (w + 1 < words) out[w + 1] = static_cast<word_t>(bits >> 32);
    }
}

void bnn_b1_f32_unpack_ukernel__avx512(const word_t* in, std::int64_t rows,
                                       std::int64_t channels, float* out) {
  const std::int64_t words = words_for(channels);
  const __m512 plus = _mm512_set1_ps(1.0f), minus = _mm512_set1_ps(-1.0f);
  for (std::int64_t r = 0; r < rows; ++r, in += words, out += channels)
    for (std::int64_t h = 0; 16 * h < channels; ++h) {
      const __mmask16 bits = static_cast<__mmask16>(in[h / 2] >> (16 * (h % 2)));
      const __m512 v = _mm512_mask_blend_ps(bits, plus, minus);
      _mm512_mask_storeu_ps(out + 16 * h, mask16(channels - 16 * h), v);
    }
}

void bnn_b1_s8_unpack_ukernel__avx512(const word_t* in, std::int64_t rows,
                                      std::int64_t channels, std::int8_t* out) {
  const std::int64_t words = words_for(channels);
  const __m512i plus = _mm512_set1_epi8(1), minus = _mm512_set1_epi8(-1);
  for (std::int64_t r = 0; r < rows; ++r, in += words, out += channels)
    for (std::int64_t w = 0; w < words; w += 2) {
      std::uint64_t bits = in[w];
      if (w + 1 < words) bits |= static_cast<std::uint64_t>(in[w + 1]) << 32;
      const std::int64_t left = channels - 32 * w;
      const __mmask64 store = left >= 64 ? ~0ULL : (1ULL << left) - 1ULL;
      _mm512_mask_storeu_epi8(out + 32 * w, store, _mm512_mask_blend_epi8(bits, plus, minus));
    }
}

void bnn_b1_gemm_ukernel_4x4__avx512_vpopcntq(std::int64_t m, std::int64_t n, std::int64_t k64,
                                              const std::uint64_t* a, std::int64_t as,
                                              const std::uint64_t* w, std::int64_t ws,
                                              std::int32_t* c, std::int64_t cs) {
  std::int64_t i = 0;
  for (; i + 4 <= m; i += 4) rows<4>(n, k64, a + i * as, as, w, ws, c + i * cs, cs);
  for (; i < m; ++i) rows<1>(n, k64, a + i * as, as, w, ws, c + i * cs, cs);
}

void bnn_s32_s32_dot_ukernel__avx512(const EpilogueParams& p, const std::int32_t* pop,
                                     std::int32_t* out) {
  detail::epilogue_s32_loop(p, pop, out);
}

void bnn_s32_f32_minmax_ukernel__avx512(const EpilogueParams& p, const std::int32_t* pop,
                                        float* out) {
  detail::epilogue_f32_loop(p, pop, out);
}

// 16 channels per compare: bit = (sign * d < threshold), tails by masked loads.
void bnn_s32_b1_threshold_ukernel__avx512(const EpilogueParams& p, const std::int32_t* pop,
                                          word_t* out) {
  const __m512i k = _mm512_set1_epi32(p.k_bits);
  for (std::int64_t w = 0; 32 * w < p.n; ++w) {
    word_t word = 0;
    for (int h = 0; h < 2; ++h) {
      const std::int64_t o = 32 * w + 16 * h;
      if (o >= p.n) break;
      const __mmask16 m = mask16(p.n - o);
      const __m512i cnt = _mm512_maskz_loadu_epi32(m, pop + o);
      __m512i d = _mm512_sub_epi32(k, _mm512_add_epi32(cnt, cnt));
      if (p.correction) d = _mm512_sub_epi32(d, _mm512_maskz_loadu_epi32(m, p.correction + o));
      const __m512i sd = _mm512_mullo_epi32(d, _mm512_maskz_loadu_epi32(m, p.sign + o));
      const __mmask16 lt = _mm512_mask_cmplt_epi32_mask(m, sd, _mm512_maskz_loadu_epi32(m, p.threshold + o));
      word |= static_cast<word_t>(lt) << (16 * h);
    }
    out[w] = word;
  }
}

}  // namespace bnnkit
