// AVX-512 kernels (F + BW + VL + VPOPCNTDQ): bit-packing with mask compares, popcount
// GEMMs with VPOPCNTQ, and the output transforms. Compiled with its own flags only; only
// the entry points have external linkage.
//
// Two GEMM layouts. The default, `_o8`, vectorizes over output channels: one 64-bit lane
// per channel, weights packed by 8 channels (ukernels.h), each input word broadcast to all
// lanes. A 6-pixel x 32-channel tile keeps 24 accumulators, 4 weight vectors and the
// broadcast in the 32 zmm registers; per input word it loads 4 + 6 vectors for 24
// XOR + VPOPCNTQ + ADD triples, so the loop is bound by the vector ALUs (on Zen 5:
// 2 VPOPCNTQ and 4 XOR/ADD per cycle, i.e. ~1.3 triples = ~680 binary MACs per cycle),
// needs no horizontal sums and no padding of the reduction to 512 bits. The rows layout
// (`4x4`, 8 words per 512-bit chunk along the reduction, masked tail, 16 horizontal sums
// per tile) is kept as a variant: it wastes lanes when k64 % 8 != 0 and its sums cost as
// much as the loop on short reductions (3x3 x 64 channels = 9 words).
#include <immintrin.h>

#include <climits>
#include <cmath>
#include <cstring>

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

// ---- o8 layout: 64-bit lane = output channel -----------------------------------------

constexpr int kMR = 6;  // pixels per tile
constexpr int kNR = 4;  // 8-channel blocks per tile

// The output transform applied in the tile (O8Fused): per 16 channels, the two 8-lane
// accumulators become one vector of 16 int32 counts (one permute; counts < 2^31), then the
// epilogue's steps in the epilogue's order, so the results are the same bits.
struct Fused {
  const EpilogueParams* p;
  OutputKind kind;
  char* out;
  std::int64_t stride_bytes;  // per pixel
  std::int64_t channel0;
  bool corr, acc, clamp;
};

#define BNNKIT_INLINE inline __attribute__((always_inline))

BNNKIT_INLINE __m512i counts16(__m512i lo, __m512i hi) {  // the low dwords of lo's then hi's lanes
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  return _mm512_permutex2var_epi32(lo, even, hi);
}

BNNKIT_INLINE __m512i dot16(const __m512i& k, __m512i cnt, bool corr, const __m512i& c) {
  const __m512i d = _mm512_sub_epi32(k, _mm512_add_epi32(cnt, cnt));
  return corr ? _mm512_sub_epi32(d, c) : d;
}

// Pixels i < MR of one tile, channels [ch, ch + channels) of the call (ch % 32 == 0). The
// loops are unrolled so that the accumulators stay in registers.
template <int MR, int NR>
BNNKIT_INLINE void store_fused(const Fused& f, const __m512i (&acc)[MR][NR], std::int64_t ch, int channels) {
  constexpr int H = (NR + 1) / 2;  // 16-channel halves
  const EpilogueParams& p = *f.p;
  const std::int64_t c0 = f.channel0 + ch;
  const __m512i k = _mm512_set1_epi32(p.k_bits);
  __mmask16 m[H];
  __m512i corr[H];
#pragma GCC unroll 2
  for (int h = 0; h < H; ++h) {
    const int left = channels - 16 * h;
    m[h] = mask16(left < 0 ? 0 : left);
    corr[h] = f.corr ? _mm512_maskz_loadu_epi32(m[h], p.correction + c0 + 16 * h) : _mm512_setzero_si512();
  }
  __m512i cnt[MR][H];
#pragma GCC unroll 6
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 2
    for (int h = 0; h < H; ++h)
      cnt[i][h] = 2 * h + 1 < NR ? counts16(acc[i][2 * h], acc[i][2 * h + 1])
                                 : _mm512_zextsi256_si512(_mm512_cvtepi64_epi32(acc[i][2 * h]));
  if (f.kind == OutputKind::kFloat) {
    __m512 mul[H], bias[H];
#pragma GCC unroll 2
    for (int h = 0; h < H; ++h) {
      mul[h] = _mm512_maskz_loadu_ps(m[h], p.multiplier + c0 + 16 * h);
      bias[h] = _mm512_maskz_loadu_ps(m[h], p.bias + c0 + 16 * h);
    }
    const __m512i amin = _mm512_set1_epi32(p.acc_min), amax = _mm512_set1_epi32(p.acc_max);
    const __m512 lo = _mm512_set1_ps(p.clamp_min), hi = _mm512_set1_ps(p.clamp_max);
#pragma GCC unroll 6
    for (int i = 0; i < MR; ++i) {
      float* out = reinterpret_cast<float*>(f.out + i * f.stride_bytes) + c0;
#pragma GCC unroll 2
      for (int h = 0; h < H; ++h) {
        __m512i d = dot16(k, cnt[i][h], f.corr, corr[h]);
        if (f.acc) d = _mm512_min_epi32(_mm512_max_epi32(d, amin), amax);
        __m512 y = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d), mul[h], bias[h]);  // one rounding
        if (f.clamp) y = _mm512_min_ps(_mm512_max_ps(y, lo), hi);
        if (m[h] == 0xFFFF) _mm512_storeu_ps(out + 16 * h, y);
        else _mm512_mask_storeu_ps(out + 16 * h, m[h], y);
      }
    }
  } else {
    __m512i sg[H], thr[H];
#pragma GCC unroll 2
    for (int h = 0; h < H; ++h) {
      sg[h] = _mm512_maskz_loadu_epi32(m[h], p.sign + c0 + 16 * h);
      thr[h] = _mm512_maskz_loadu_epi32(m[h], p.threshold + c0 + 16 * h);
    }
#pragma GCC unroll 6
    for (int i = 0; i < MR; ++i) {
      std::uint32_t word = 0;
#pragma GCC unroll 2
      for (int h = 0; h < H; ++h) {
        const __m512i sd = _mm512_mullo_epi32(dot16(k, cnt[i][h], f.corr, corr[h]), sg[h]);
        word |= static_cast<std::uint32_t>(_mm512_mask_cmplt_epi32_mask(m[h], sd, thr[h])) << (16 * h);
      }
      std::memcpy(f.out + i * f.stride_bytes + (c0 / 32) * sizeof(word_t), &word, sizeof(word));
    }
  }
}

// c[i][8j + l] for i < MR, j < NR, l < lanes of block j (8 but the last: `last_lanes`);
// pixel i's words of segment s start at a[s] + off + i * as. With `f`, outputs of the
// tile's pixels (starting at f->out) instead, for channels [ch, ch + 8 * (NR - 1) + last).
template <int MR, int NR>
void tile_o8(std::int64_t k64, std::int64_t segs, const std::uint64_t* const* a, std::int64_t off,
             std::int64_t as, const std::uint64_t* w, std::int32_t* c, std::int64_t cs,
             int last_lanes, const Fused* f, std::int64_t ch) {
  __m512i acc[MR][NR];
#pragma GCC unroll 6
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int j = 0; j < NR; ++j) acc[i][j] = _mm512_setzero_si512();
  const std::int64_t block = k64 * 8, len = k64 / segs;  // words between 8-channel blocks
  for (std::int64_t sg = 0; sg < segs; ++sg) {
    const std::uint64_t* x0 = a[sg] + off;
    const std::uint64_t* ws = w + sg * len * 8;
    for (std::int64_t k = 0; k < len; ++k) {
      __m512i wv[NR];
#pragma GCC unroll 4
      for (int j = 0; j < NR; ++j) wv[j] = _mm512_loadu_si512(ws + j * block + k * 8);
#pragma GCC unroll 6
      for (int i = 0; i < MR; ++i) {
        long long word;  // in-place input words may be only 4-byte aligned
        std::memcpy(&word, x0 + i * as + k, sizeof(word));
        const __m512i x = _mm512_set1_epi64(word);
#pragma GCC unroll 4
        for (int j = 0; j < NR; ++j)
          acc[i][j] = _mm512_add_epi64(acc[i][j], _mm512_popcnt_epi64(_mm512_xor_si512(x, wv[j])));
      }
    }
  }
  if (f != nullptr) {
    store_fused<MR, NR>(*f, acc, ch, 8 * (NR - 1) + last_lanes);
    return;
  }
  const __mmask8 tail = static_cast<__mmask8>((1u << last_lanes) - 1u);
#pragma GCC unroll 6
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int j = 0; j < NR; ++j) {
      const __m256i v = _mm512_cvtepi64_epi32(acc[i][j]);  // counts < 2^31
      if (j + 1 < NR || last_lanes == 8) _mm256_storeu_si256(reinterpret_cast<__m256i*>(c + i * cs + 8 * j), v);
      else _mm256_mask_storeu_epi32(c + i * cs + 8 * j, tail, v);
    }
}

using TileO8 = void(std::int64_t, std::int64_t, const std::uint64_t* const*, std::int64_t,
                    std::int64_t, const std::uint64_t*, std::int32_t*, std::int64_t, int,
                    const Fused*, std::int64_t);

template <int MR>
TileO8* tile_o8_for(int nr) {
  switch (nr) {
    case 1: return tile_o8<MR, 1>;
    case 2: return tile_o8<MR, 2>;
    case 3: return tile_o8<MR, 3>;
    default: return tile_o8<MR, 4>;
  }
}

TileO8* tile_o8_for(int mr, int nr) {
  switch (mr) {
    case 1: return tile_o8_for<1>(nr);
    case 2: return tile_o8_for<2>(nr);
    case 3: return tile_o8_for<3>(nr);
    case 4: return tile_o8_for<4>(nr);
    case 5: return tile_o8_for<5>(nr);
    default: return tile_o8_for<6>(nr);
  }
}

}  // namespace

void bnn_b1_gemm_ukernel_6x32__avx512_vpopcntq_o8(std::int64_t m, std::int64_t n,
                                                  std::int64_t k64, std::int64_t segments,
                                                  const std::uint64_t* const* a,
                                                  std::int64_t as, const std::uint64_t* w,
                                                  std::int32_t* c, std::int64_t cs,
                                                  const O8Fused* fused) {
  Fused f{};
  std::int64_t out_bytes = 0;  // per pixel
  if (fused != nullptr) {
    const EpilogueParams& p = *fused->p;
    out_bytes = fused->out_stride * (fused->kind == OutputKind::kFloat ? sizeof(float) : sizeof(word_t));
    f = Fused{&p, fused->kind, static_cast<char*>(fused->out), out_bytes, fused->channel0,
              p.correction != nullptr, p.acc_min != INT32_MIN || p.acc_max != INT32_MAX,
              !(p.clamp_min == -INFINITY && p.clamp_max == INFINITY)};
  }
  // Channel blocks outside, pixels inside: a 32-channel weight block (k64 * 256 bytes)
  // stays in L1 while every pixel tile of the chunk passes over it.
  for (std::int64_t j = 0; j < n; j += 8 * kNR) {
    const std::int64_t left = n - j;
    const int nr = static_cast<int>(left >= 8 * kNR ? kNR : (left + 7) / 8);
    const int last = static_cast<int>(left >= 8 * kNR ? 8 : left - 8 * (nr - 1));
    const std::uint64_t* wj = w + (j / 8) * k64 * 8;
    TileO8* full = tile_o8_for(kMR, nr);
    std::int64_t i = 0;
    for (; i + kMR <= m; i += kMR) {
      Fused fi = f;
      if (fused) fi.out += i * out_bytes;
      full(k64, segments, a, i * as, as, wj, fused ? nullptr : c + i * cs + j, cs, last,
           fused ? &fi : nullptr, j);
    }
    if (i < m) {
      Fused fi = f;
      if (fused) fi.out += i * out_bytes;
      tile_o8_for(static_cast<int>(m - i), nr)(k64, segments, a, i * as, as, wj,
                                              fused ? nullptr : c + i * cs + j, cs, last,
                                              fused ? &fi : nullptr, j);
    }
  }
}

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

// 16 channels per step: d = K - 2 * pop (- correction), clamped to [acc_min, acc_max],
// y = clamp(fma(d, m, b), lo, hi); unmasked loads and stores but for the tail (masked stores
// are slow on some cores), the parameters read once into registers (the stores could alias
// `p` otherwise), and the steps that do nothing (no correction, full-range clamps) compiled
// out: the epilogue is a sixth of a short-reduction conv's time.
namespace {
struct F32Consts {
  __m512i k, amin, amax;
  __m512 lo, hi;
};

template <bool kCorr, bool kAcc, bool kOut>
inline void f32_block(const F32Consts& c, const std::int32_t* pop, const std::int32_t* corr,
                      const float* mul, const float* bias, float* out, __mmask16 m, bool full) {
  const __m512i cnt = full ? _mm512_loadu_si512(pop) : _mm512_maskz_loadu_epi32(m, pop);
  __m512i d = _mm512_sub_epi32(c.k, _mm512_add_epi32(cnt, cnt));
  if (kCorr) d = _mm512_sub_epi32(d, full ? _mm512_loadu_si512(corr) : _mm512_maskz_loadu_epi32(m, corr));
  if (kAcc) d = _mm512_min_epi32(_mm512_max_epi32(d, c.amin), c.amax);
  const __m512 mv = full ? _mm512_loadu_ps(mul) : _mm512_maskz_loadu_ps(m, mul);
  const __m512 bv = full ? _mm512_loadu_ps(bias) : _mm512_maskz_loadu_ps(m, bias);
  __m512 y = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d), mv, bv);  // one rounding, as every path
  if (kOut) y = _mm512_min_ps(_mm512_max_ps(y, c.lo), c.hi);
  if (full) _mm512_storeu_ps(out, y);
  else _mm512_mask_storeu_ps(out, m, y);
}

template <bool kCorr, bool kAcc, bool kOut>
void f32_channels(const EpilogueParams& p, const std::int32_t* pop, float* out) {
  const F32Consts c{_mm512_set1_epi32(p.k_bits), _mm512_set1_epi32(p.acc_min),
                    _mm512_set1_epi32(p.acc_max), _mm512_set1_ps(p.clamp_min),
                    _mm512_set1_ps(p.clamp_max)};
  const std::int64_t n = p.n;
  const std::int32_t* corr = p.correction;
  const float *mul = p.multiplier, *bias = p.bias;
  std::int64_t o = 0;
  for (; o + 16 <= n; o += 16)
    f32_block<kCorr, kAcc, kOut>(c, pop + o, kCorr ? corr + o : nullptr, mul + o, bias + o, out + o, 0xFFFF, true);
  if (o < n)
    f32_block<kCorr, kAcc, kOut>(c, pop + o, kCorr ? corr + o : nullptr, mul + o, bias + o, out + o,
                                 mask16(n - o), false);
}

using F32Channels = void(const EpilogueParams&, const std::int32_t*, float*);

template <bool kCorr, bool kAcc>
F32Channels* f32_for(bool out_clamp) {
  return out_clamp ? f32_channels<kCorr, kAcc, true> : f32_channels<kCorr, kAcc, false>;
}
}  // namespace

void bnn_s32_f32_minmax_ukernel__avx512(const EpilogueParams& p, const std::int32_t* pop,
                                        float* out) {
  const bool acc = p.acc_min != INT32_MIN || p.acc_max != INT32_MAX;
  const bool clamp = !(p.clamp_min == -INFINITY && p.clamp_max == INFINITY);
  F32Channels* f = p.correction ? (acc ? f32_for<true, true>(clamp) : f32_for<true, false>(clamp))
                                : (acc ? f32_for<false, true>(clamp) : f32_for<false, false>(clamp));
  f(p, pop, out);
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
