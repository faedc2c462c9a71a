// NEON kernels (AArch64): bit-packing and a popcount GEMM with VCNT (2 pixels x 4 output
// channels per step, 128-bit chunks, byte counts widened pairwise into 16-bit lanes).
// Compiled on arm64 only; only the entry points have external linkage.
#include <arm_neon.h>

#include "kernels/ukernels.h"

namespace bnnkit {
namespace {

template <typename T>
word_t pack_tail(const T* x, std::int64_t begin, std::int64_t end) {
  word_t word = 0;
  for (std::int64_t c = begin; c < end; ++c) word |= bit_of(x[c]) << (c - begin);
  return word;
}

// x < 0 for 4 floats -> 4 bits (vcltzq is false for -0.0 and NaN).
inline word_t pack4_f32(const float* x) {
  const uint32x4_t weights = {1, 2, 4, 8};
  const uint32x4_t lt = vandq_u32(vcltzq_f32(vld1q_f32(x)), weights);
  return vaddvq_u32(lt);
}

// x < 0 for 16 int8 -> 16 bits.
inline word_t pack16_s8(const std::int8_t* x) {
  const uint8x16_t weights = {1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128};
  const uint8x16_t lt = vandq_u8(vcltzq_s8(vld1q_s8(x)), weights);
  return vaddv_u8(vget_low_u8(lt)) | (static_cast<word_t>(vaddv_u8(vget_high_u8(lt))) << 8);
}

template <int MR, int NR>
void tile(std::int64_t k64, const std::uint64_t* a, std::int64_t as, const std::uint64_t* w,
          std::int64_t ws, std::int32_t* c, std::int64_t cs) {
  std::int32_t total[MR][NR] = {};
  const std::int64_t chunks = k64 / 2;
  for (std::int64_t q0 = 0; q0 < chunks; q0 += 4096) {  // 16-bit lanes: < 4096 * 16 each
    uint16x8_t acc[MR][NR];
    for (int i = 0; i < MR; ++i)
      for (int j = 0; j < NR; ++j) acc[i][j] = vdupq_n_u16(0);
    const std::int64_t q1 = chunks < q0 + 4096 ? chunks : q0 + 4096;
    for (std::int64_t q = q0; q < q1; ++q) {
      uint8x16_t x[MR];
      for (int i = 0; i < MR; ++i) x[i] = vreinterpretq_u8_u64(vld1q_u64(a + i * as + 2 * q));
      for (int j = 0; j < NR; ++j) {
        const uint8x16_t wv = vreinterpretq_u8_u64(vld1q_u64(w + j * ws + 2 * q));
        for (int i = 0; i < MR; ++i) acc[i][j] = vpadalq_u8(acc[i][j], vcntq_u8(veorq_u8(x[i], wv)));
      }
    }
    for (int i = 0; i < MR; ++i)
      for (int j = 0; j < NR; ++j) total[i][j] += vaddlvq_u16(acc[i][j]);
  }
  if (k64 % 2)
    for (int i = 0; i < MR; ++i)
      for (int j = 0; j < NR; ++j) {
        const uint64x1_t x = vdup_n_u64(a[i * as + k64 - 1] ^ w[j * ws + k64 - 1]);
        total[i][j] += vaddv_u8(vcnt_u8(vreinterpret_u8_u64(x)));
      }
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) c[i * cs + j] = total[i][j];
}

template <int MR>
void rows(std::int64_t n, std::int64_t k64, const std::uint64_t* a, std::int64_t as,
          const std::uint64_t* w, std::int64_t ws, std::int32_t* c, std::int64_t cs) {
  std::int64_t j = 0;
  for (; j + 4 <= n; j += 4) tile<MR, 4>(k64, a, as, w + j * ws, ws, c + j, cs);
  for (; j < n; ++j) tile<MR, 1>(k64, a, as, w + j * ws, ws, c + j, cs);
}

}  // namespace

void bnn_f32_b1_pack_ukernel__neon(const float* x, std::int64_t rows, std::int64_t channels,
                                   word_t* out) {
  const std::int64_t full = channels / 32, words = words_for(channels);
  for (std::int64_t r = 0; r < rows; ++r, x += channels, out += words) {
    for (std::int64_t w = 0; w < full; ++w) {
      word_t word = 0;
      for (int q = 0; q < 8; ++q) word |= pack4_f32(x + 32 * w + 4 * q) << (4 * q);
      out[w] = word;
    }
    if (full < words) out[full] = pack_tail(x, 32 * full, channels);
  }
}

void bnn_s8_b1_pack_ukernel__neon(const std::int8_t* x, std::int64_t rows,
                                  std::int64_t channels, word_t* out) {
  const std::int64_t full = channels / 32, words = words_for(channels);
  for (std::int64_t r = 0; r < rows; ++r, x += channels, out += words) {
    for (std::int64_t w = 0; w < full; ++w)
      out[w] = pack16_s8(x + 32 * w) | (pack16_s8(x + 32 * w + 16) << 16);
    if (full < words) out[full] = pack_tail(x, 32 * full, channels);
  }
}

void bnn_b1_f32_unpack_ukernel__neon(const word_t* in, std::int64_t rows, std::int64_t channels,
                                     float* out) {
  const std::int64_t words = words_for(channels);
  const int32x4_t shifts = {31, 30, 29, 28};
  const uint32x4_t one = vdupq_n_u32(0x3f800000u), sign = vdupq_n_u32(0x80000000u);
  for (std::int64_t r = 0; r < rows; ++r, in += words, out += channels) {
    std::int64_t c = 0;
    for (; c + 4 <= channels; c += 4) {
      const uint32x4_t v = vshlq_u32(vdupq_n_u32((in[c / 32] >> (c % 32)) & 0xFu), shifts);
      vst1q_f32(out + c, vreinterpretq_f32_u32(vorrq_u32(vandq_u32(v, sign), one)));
    }
    for (; c < channels; ++c) out[c] = value_of_bit((in[c / 32] >> (c % 32)) & 1u);
  }
}

void bnn_b1_s8_unpack_ukernel__neon(const word_t* in, std::int64_t rows, std::int64_t channels,
                                    std::int8_t* out) {
  const std::int64_t words = words_for(channels);
  const uint8x8_t bits = {1, 2, 4, 8, 16, 32, 64, 128};
  for (std::int64_t r = 0; r < rows; ++r, in += words, out += channels) {
    std::int64_t c = 0;
    for (; c + 8 <= channels; c += 8) {
      const uint8x8_t byte = vdup_n_u8(static_cast<std::uint8_t>(in[c / 32] >> (c % 32)));
      const uint8x8_t set = vtst_u8(byte, bits);  // 0xFF where the bit is 1
      vst1_s8(out + c, vreinterpret_s8_u8(vorr_u8(set, vdup_n_u8(1))));
    }
    for (; c < channels; ++c)
      out[c] = static_cast<std::int8_t>(1 - 2 * static_cast<int>((in[c / 32] >> (c % 32)) & 1u));
  }
}

void bnn_b1_gemm_ukernel_2x4__neon_cnt(std::int64_t m, std::int64_t n, std::int64_t k64,
                                       const std::uint64_t* a, std::int64_t as,
                                       const std::uint64_t* w, std::int64_t ws,
                                       std::int32_t* c, std::int64_t cs) {
  std::int64_t i = 0;
  for (; i + 2 <= m; i += 2) rows<2>(n, k64, a + i * as, as, w, ws, c + i * cs, cs);
  if (i < m) rows<1>(n, k64, a + i * as, as, w, ws, c + i * cs, cs);
}

}  // namespace bnnkit
