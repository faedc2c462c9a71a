// The fused output transform of a binary conv / dense, derived once here.
//
// Inputs of one output element (pixel p, output channel o):
//   pop   = sum over the K bits of the receptive field of popcount(input XOR weight),
//           where padded taps are all-zero words (= +1 values) in the padded input, so
//           K = kernel_h * kernel_w * (in_channels / groups) for every pixel;
//   corr  = the zero-padding correction (pad_value = 0 only, else 0): a padded tap of
//           value +1 contributes sum_c (+1) * w_c = C_g - 2 * popcount(w_tap) to the dot
//           product, and pad_value = 0 wants it to contribute 0, so
//           corr[p][o] = sum over the taps of p that fall in the padding of
//                        (C_g - 2 * popcount(w[o][tap]))
//           (precomputed from the weights per border class, see bconv2d.cc).
//
//   (1)  d = K - 2 * pop - corr                         the exact integer dot product
//   (1') a = clamp(d, amin, amax)                       an integer clamp before the affine
//                                                       (ReLU before BN: amin = 0), else a = d
//   (2)  y = clamp(fma(a, m[o], b[o]), lo, hi)          float output (BN folded into m, b;
//                                                       ReLU = lo 0, hard-tanh = [-1, 1]);
//                                                       rounded once, on every path
//   (3)  bit = 1  <=>  clamp(a * m + b, lo, hi) < 0     bit output (bit 1 means -1)
//
// Bit output without floats. clamp(y) = min(max(y, lo), hi) < 0 holds iff hi < 0, or
// lo < 0 and y < 0. The sign of y = d*m + b is taken in exact arithmetic: d*m is exact in
// double (|d| < 2^31, m has 24 significant bits) and the rounded double sum of two
// doubles is never of the opposite sign nor zero unless the exact sum is, so
// `double(d) * m + b < 0` is the exact test. For m != 0 it is monotone in d:
//   m > 0:  y < 0  <=>  d < t,   t = the smallest integer with t*m + b >= 0
//   m < 0:  y < 0  <=>  d > t,   t = the largest integer with t*m + b >= 0
//                   <=> -d < -t
// so with s = sign(m) one compare covers both:  bit = (s * d < T),  T = s * t.
// m == 0 makes y = b for every d: bit = (b < 0), i.e. T = INT32_MAX (always) or
// INT32_MIN (never) with s = 1; hi < 0 and lo >= 0 use the same constants. Thresholds are
// clamped to [-K - 2, K + 2] ∪ {INT32_MIN, INT32_MAX}, outside which |d| <= K never
// reaches.
// The clamp (1') folds into the thresholds: a = clamp(d) is monotone in d, so for m > 0
// "a < t" is never true when t <= amin, always when t > amax, and otherwise the same as
// "d < t" (d < amin gives a = amin < t; d > amax gives a = amax >= t); for m < 0, "a > t" is
// never true when t >= amax, always when t < amin, else the same as "d > t". So the
// per-channel (s, T) of the unclamped rule only turn into the constants at the ends. The float path (2) rounds d*m + b in float and may differ from (3) only for
// |y| within one float rounding of 0; bits are exact to the rule (3).
#pragma once

#include <cmath>
#include <cstdint>

#include "kernels/ukernels.h"

namespace bnnkit {

// Per-channel (sign, threshold) for rule (3) with the clamp (1') [acc_min, acc_max].
// Defined in bconv2d.cc (generic code).
void compute_bit_thresholds(std::int64_t n, std::int32_t k_bits, const float* multiplier,
                            const float* bias, float lo, float hi, std::int32_t acc_min,
                            std::int32_t acc_max, std::int32_t* sign, std::int32_t* threshold);

namespace detail {

// Rule (1) for channel o.
static inline std::int32_t dot_of(const EpilogueParams& p, const std::int32_t* pop,
                                  std::int64_t o) {
  const std::int32_t corr = p.correction ? p.correction[o] : 0;
  return p.k_bits - 2 * pop[o] - corr;
}

// Plain loops over the channels; each ISA translation unit includes this header and so
// compiles (and auto-vectorizes) its own copy with its own flags. Internal linkage only.
static inline void epilogue_s32_loop(const EpilogueParams& p, const std::int32_t* pop,
                                     std::int32_t* out) {
  for (std::int64_t o = 0; o < p.n; ++o) out[o] = dot_of(p, pop, o);
}

static inline void epilogue_f32_loop(const EpilogueParams& p, const std::int32_t* pop,
                                     float* out) {
  const float lo = p.clamp_min, hi = p.clamp_max;
  for (std::int64_t o = 0; o < p.n; ++o) {
    std::int32_t a = dot_of(p, pop, o);
    a = a < p.acc_min ? p.acc_min : (a > p.acc_max ? p.acc_max : a);
    float y = std::fma(static_cast<float>(a), p.multiplier[o], p.bias[o]);
    y = y < lo ? lo : y;
    out[o] = y > hi ? hi : y;
  }
}

static inline void epilogue_b1_loop(const EpilogueParams& p, const std::int32_t* pop,
                                    word_t* out) {
  for (std::int64_t w = 0; w * 32 < p.n; ++w) {
    word_t word = 0;
    const std::int64_t end = (w + 1) * 32 < p.n ? (w + 1) * 32 : p.n;
    for (std::int64_t o = w * 32; o < end; ++o) {
      const std::int32_t sd = p.sign[o] * dot_of(p, pop, o);
      word |= static_cast<word_t>(sd < p.threshold[o]) << (o - w * 32);
    }
    out[w] = word;
  }
}

}  // namespace detail
}  // namespace bnnkit
