// AVX2 popcount GEMM and output transforms. Compiled with -mavx2 -mfma -mbmi2 -mpopcnt.
//
// Two bgemm variants (manifest.inc), both 2 pixels x 4 output channels per step:
//  * _avx2_lut: 256-bit chunks; popcount of a XOR w by the nibble look-up table
//    (vpshufb of the low and high nibbles, 16 byte-sized counts per lane) added into byte
//    accumulators, reduced with vpsadbw after at most 31 chunks (31 * 8 <= 255). The last
//    k64 % 4 words use scalar POPCNT, which runs on the integer ports alongside.
//  * _avx2_popcnt: scalar 64-bit POPCNT with 8 independent accumulators.
// Measured on the Zen 3 development machine (benchmarks/README.md): _lut is 1.3-2.3x
// faster than _popcnt, so it is the default. Two further ideas were measured and dropped
// (see the README): splitting both operands into nibbles once (6 instead of 8 vector ops
// per chunk pair) and moving a fifth of each row to scalar POPCNT inside the vector loop;
// neither was faster than _lut on any of the four benchmark shapes.
#include <immintrin.h>

#include "kernels/output_transform.h"
#include "kernels/ukernels.h"

namespace bnnkit {
namespace {

constexpr std::int64_t kMaxChunks = 31;  // byte counters hold 31 chunks of at most 8 each

inline std::int64_t min64(std::int64_t a, std::int64_t b) { return a < b ? a : b; }

inline __m256i load4(const std::uint64_t* p) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
}

// Per-byte popcount of x (values 0..8).
inline __m256i popcount_bytes(__m256i x, __m256i lut, __m256i low4) {
  const __m256i lo = _mm256_and_si256(x, low4);
  const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(x, 4), low4);
  return _mm256_add_epi8(_mm256_shuffle_epi8(lut, lo), _mm256_shuffle_epi8(lut, hi));
}

// Sums of the bytes of four accumulators as four int32 lanes: vpsadbw each, put pairs
// side by side in 64-bit lanes, then fold (about 3.5 instructions per accumulator).
inline __m128i reduce4(__m256i s0, __m256i s1, __m256i s2, __m256i s3) {
  const __m256i z = _mm256_setzero_si256();
  const __m256i t0 = _mm256_or_si256(_mm256_sad_epu8(s0, z), _mm256_slli_epi64(_mm256_sad_epu8(s1, z), 32));
  const __m256i t1 = _mm256_or_si256(_mm256_sad_epu8(s2, z), _mm256_slli_epi64(_mm256_sad_epu8(s3, z), 32));
  const __m256i v = _mm256_add_epi32(_mm256_unpacklo_epi64(t0, t1), _mm256_unpackhi_epi64(t0, t1));
  return _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
}

template <int MR, int NR>
void lut_tile(std::int64_t k64, const std::uint64_t* a, std::int64_t as,
              const std::uint64_t* w, std::int64_t ws, std::int32_t* c, std::int64_t cs) {
  const __m256i lut = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4,
                                       0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
  const __m256i low4 = _mm256_set1_epi8(0x0F);
  __m128i total[MR];
  for (int i = 0; i < MR; ++i) total[i] = _mm_setzero_si128();
  const std::int64_t chunks = k64 / 4;
  for (std::int64_t q0 = 0; q0 < chunks; q0 += kMaxChunks) {
    __m256i acc[MR][4];
    for (int i = 0; i < MR; ++i)
      for (int j = 0; j < 4; ++j) acc[i][j] = _mm256_setzero_si256();  // j >= NR stay 0
    const std::int64_t q1 = min64(chunks, q0 + kMaxChunks);
    for (std::int64_t q = q0; q < q1; ++q) {
      __m256i x[MR];
      for (int i = 0; i < MR; ++i) x[i] = load4(a + i * as + 4 * q);
      for (int j = 0; j < NR; ++j) {
        const __m256i wv = load4(w + j * ws + 4 * q);
        for (int i = 0; i < MR; ++i)
          acc[i][j] = _mm256_add_epi8(
              acc[i][j], popcount_bytes(_mm256_xor_si256(x[i], wv), lut, low4));
      }
    }
    for (int i = 0; i < MR; ++i)
      total[i] = _mm_add_epi32(total[i], reduce4(acc[i][0], acc[i][1], acc[i][2], acc[i][3]));
  }
  // The last k64 % 4 words: scalar POPCNT on the integer ports. The scalar sums enter the
  // vector through registers (vpinsrd), not through memory: storing four int32 and then
  // loading them as one vector stalls store-to-load forwarding (measured: ~20% of the
  // kernel time at C_in = 64).
  for (int i = 0; i < MR; ++i) {
    std::int32_t tail[4] = {0, 0, 0, 0};
    for (std::int64_t k = 4 * chunks; k < k64; ++k)
      for (int j = 0; j < NR; ++j)
        tail[j] += static_cast<std::int32_t>(_mm_popcnt_u64(a[i * as + k] ^ w[j * ws + k]));
    const __m128i sum = _mm_add_epi32(total[i], _mm_setr_epi32(tail[0], tail[1], tail[2], tail[3]));
    if (NR == 4) {
      _mm_storeu_si128(reinterpret_cast<__m128i*>(c + i * cs), sum);
    } else {
      std::int32_t lanes[4];
      _mm_storeu_si128(reinterpret_cast<__m128i*>(lanes), sum);
      for (int j = 0; j < NR; ++j) c[i * cs + j] = lanes[j];
    }
  }
}

template <int MR, int NR>
void popcnt_tile(std::int64_t k64, const std::uint64_t* a, std::int64_t as,
                 const std::uint64_t* w, std::int64_t ws, std::int32_t* c, std::int64_t cs) {
  std::uint64_t acc[MR][NR] = {};
  for (std::int64_t k = 0; k < k64; ++k)
    for (int i = 0; i < MR; ++i) {
      const std::uint64_t x = a[i * as + k];
      for (int j = 0; j < NR; ++j) acc[i][j] += _mm_popcnt_u64(x ^ w[j * ws + k]);
    }
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) c[i * cs + j] = static_cast<std::int32_t>(acc[i][j]);
}

// Tiles of 2x4 over the m x n output, with 1-row and 1..3-column edges.
#define BNNKIT_TILED_GEMM(TILE)                                                          \
  template <int MR>                                                                      \
  void TILE##_rows(std::int64_t n, std::int64_t k64, const std::uint64_t* a,            \
                   std::int64_t as, const std::uint64_t* w, std::int64_t ws,            \
                   std::int32_t* c, std::int64_t cs) {                                  \
    std::int64_t j = 0;                                                                  \
    for (; j + 4 <= n; j += 4) TILE<MR, 4>(k64, a, as, w + j * ws, ws, c + j, cs);       \
    switch (n - j) {                                                                     \
      case 3: TILE<MR, 3>(k64, a, as, w + j * ws, ws, c + j, cs); break;                 \
      case 2: TILE<MR, 2>(k64, a, as, w + j * ws, ws, c + j, cs); break;                 \
      case 1: TILE<MR, 1>(k64, a, as, w + j * ws, ws, c + j, cs); break;                 \
      default: break;                                                                    \
    }                                                                                    \
  }                                                                                      \
  void TILE##_gemm(std::int64_t m, std::int64_t n, std::int64_t k64,                     \
                   const std::uint64_t* a, std::int64_t as, const std::uint64_t* w,      \
                   std::int64_t ws, std::int32_t* c, std::int64_t cs) {                  \
    std::int64_t i = 0;                                                                  \
    for (; i + 2 <= m; i += 2) TILE##_rows<2>(n, k64, a + i * as, as, w, ws, c + i * cs, cs); \
    if (i < m) TILE##_rows<1>(n, k64, a + i * as, as, w, ws, c + i * cs, cs);            \
  }
BNNKIT_TILED_GEMM(lut_tile)
BNNKIT_TILED_GEMM(popcnt_tile)
#undef BNNKIT_TILED_GEMM

}  // namespace

void bnn_b1_gemm_ukernel_2x4__avx2_lut(std::int64_t m, std::int64_t n, std::int64_t k64,
                                       const std::uint64_t* a, std::int64_t as,
                                       const std::uint64_t* w, std::int64_t ws,
                                       std::int32_t* c, std::int64_t cs) {
  lut_tile_gemm(m, n, k64, a, as, w, ws, c, cs);
}

void bnn_b1_gemm_ukernel_2x4__avx2_popcnt(std::int64_t m, std::int64_t n, std::int64_t k64,
                                          const std::uint64_t* a, std::int64_t as,
                                          const std::uint64_t* w, std::int64_t ws,
                                          std::int32_t* c, std::int64_t cs) {
  popcnt_tile_gemm(m, n, k64, a, as, w, ws, c, cs);
}

void bnn_s32_s32_dot_ukernel__avx2(const EpilogueParams& p, const std::int32_t* pop,
                                   std::int32_t* out) {
  detail::epilogue_s32_loop(p, pop, out);
}

// 8 channels at a time: d = K - 2 pop - corr, clamped, then y = clamp(fma(d, m, b)) (one
// rounding, as every path); the tail (n % 8 channels) by the shared scalar loop.
void bnn_s32_f32_minmax_ukernel__avx2(const EpilogueParams& p, const std::int32_t* pop,
                                      float* out) {
  const __m256i k = _mm256_set1_epi32(p.k_bits);
  const __m256i amin = _mm256_set1_epi32(p.acc_min), amax = _mm256_set1_epi32(p.acc_max);
  const __m256 lo = _mm256_set1_ps(p.clamp_min), hi = _mm256_set1_ps(p.clamp_max);
  const std::int64_t n = p.n, full = n / 8 * 8;
  const std::int32_t* corr = p.correction;
  const float *mul = p.multiplier, *bias = p.bias;
  for (std::int64_t o = 0; o < full; o += 8) {
    const __m256i cnt = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(pop + o));
    __m256i d = _mm256_sub_epi32(k, _mm256_add_epi32(cnt, cnt));
    if (corr) d = _mm256_sub_epi32(d, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(corr + o)));
    d = _mm256_min_epi32(_mm256_max_epi32(d, amin), amax);
    const __m256 y = _mm256_fmadd_ps(_mm256_cvtepi32_ps(d), _mm256_loadu_ps(mul + o), _mm256_loadu_ps(bias + o));
    _mm256_storeu_ps(out + o, _mm256_min_ps(_mm256_max_ps(y, lo), hi));
  }
  if (full == n) return;
  EpilogueParams tail = p;
  tail.n = n - full;
  tail.multiplier += full;
  tail.bias += full;
  if (tail.correction) tail.correction += full;
  detail::epilogue_f32_loop(tail, pop + full, out + full);
}

// 8 channels at a time: d = K - 2 pop - corr; bit = (sign * d < threshold) via vpsignd,
// vpcmpgtd and vmovmskps; four groups of 8 make one output word.
void bnn_s32_b1_threshold_ukernel__avx2(const EpilogueParams& p, const std::int32_t* pop,
                                        word_t* out) {
  const std::int64_t full = p.n / 32;
  const __m256i k = _mm256_set1_epi32(p.k_bits);
  for (std::int64_t w = 0; w < full; ++w) {
    word_t word = 0;
    for (int q = 0; q < 4; ++q) {
      const std::int64_t o = 32 * w + 8 * q;
      const __m256i cnt = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(pop + o));
      __m256i d = _mm256_sub_epi32(k, _mm256_add_epi32(cnt, cnt));
      if (p.correction)
        d = _mm256_sub_epi32(d, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p.correction + o)));
      const __m256i sd = _mm256_sign_epi32(d, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p.sign + o)));
      const __m256i thr = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p.threshold + o));
      const int bits = _mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpgt_epi32(thr, sd)));
      word |= static_cast<word_t>(bits) << (8 * q);
    }
    out[w] = word;
  }
  if (32 * full < p.n) {  // last partial word
    word_t word = 0;
    for (std::int64_t o = 32 * full; o < p.n; ++o)
      word |= static_cast<word_t>(p.sign[o] * detail::dot_of(p, pop, o) < p.threshold[o]) << (o % 32);
    out[full] = word;
  }
}

}  // namespace bnnkit
