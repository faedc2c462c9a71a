// AVX2 bit-packing. Compiled with -mavx2 -mfma -mbmi2 -mpopcnt only (CMakeLists.txt);
// everything but the entry points has internal linkage (bits.h rule).
#include <immintrin.h>

#include "kernels/ukernels.h"

namespace bnnkit {
namespace {

// Channels [begin, end) of one row, one bit at a time (row tails).
template <typename T>
word_t pack_tail(const T* x, std::int64_t begin, std::int64_t end) {
  word_t word = 0;
  for (std::int64_t c = begin; c < end; ++c) word |= bit_of(x[c]) << (c - begin);
  return word;
}

// x < 0 (ordered, so -0.0 and NaN give 0) for 32 floats -> one word.
inline word_t pack32_f32(const float* x) {
  const __m256 zero = _mm256_setzero_ps();
  word_t word = 0;
  for (int q = 0; q < 4; ++q) {
    const __m256 lt = _mm256_cmp_ps(_mm256_loadu_ps(x + 8 * q), zero, _CMP_LT_OQ);
    word |= static_cast<word_t>(_mm256_movemask_ps(lt)) << (8 * q);
  }
  return word;
}

// +1.0f / -1.0f for the 8 bits of `byte`: move bit j to the sign bit, OR in 1.0f.
inline __m256 unpack8_f32(word_t byte) {
  const __m256i shifts = _mm256_setr_epi32(31, 30, 29, 28, 27, 26, 25, 24);
  const __m256i v = _mm256_sllv_epi32(_mm256_set1_epi32(static_cast<int>(byte)), shifts);
  const __m256i sign = _mm256_and_si256(v, _mm256_set1_epi32(INT32_MIN));
  return _mm256_castsi256_ps(_mm256_or_si256(sign, _mm256_set1_epi32(0x3f800000)));
}

// +1 / -1 int8 for the 32 bits of `word`: spread byte k/8 to lane k, test bit k%8.
inline __m256i unpack32_s8(word_t word) {
  const __m256i spread = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,
                                          2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
  const __m256i bits = _mm256_set1_epi64x(0x8040201008040201LL);
  const __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32(static_cast<int>(word)), spread);
  const __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(v, bits), bits);
  return _mm256_or_si256(set, _mm256_set1_epi8(1));
}

}  // namespace

void bnn_f32_b1_pack_ukernel__avx2(const float* x, std::int64_t rows, std::int64_t channels,
                                   word_t* out) {
  const std::int64_t full = channels / 32, words = words_for(channels);
  for (std::int64_t r = 0; r < rows; ++r, x += channels, out += words) {
    for (std::int64_t w = 0; w < full; ++w) out[w] = pack32_f32(x + 32 * w);
    if (full < words) out[full] = pack_tail(x, 32 * full, channels);
  }
}

void bnn_s8_b1_pack_ukernel__avx2(const std::int8_t* x, std::int64_t rows,
                                  std::int64_t channels, word_t* out) {
  const std::int64_t full = channels / 32, words = words_for(channels);
  for (std::int64_t r = 0; r < rows; ++r, x += channels, out += words) {
    for (std::int64_t w = 0; w < full; ++w) {
      const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + 32 * w));
      out[w] = static_cast<word_t>(_mm256_movemask_epi8(v));  // the int8 sign bits
    }
    if (full < words) out[full] = pack_tail(x, 32 * full, channels);
  }
}

void bnn_b1_f32_unpack_ukernel__avx2(const word_t* in, std::int64_t rows,
                                     std::int64_t channels, float* out) {
  const std::int64_t full8 = channels / 8, words = words_for(channels);
  for (std::int64_t r = 0; r < rows; ++r, in += words, out += channels) {
    for (std::int64_t b = 0; b < full8; ++b)
      _mm256_storeu_ps(out + 8 * b, unpack8_f32((in[b / 4] >> (8 * (b % 4))) & 0xFFu));
    for (std::int64_t c = 8 * full8; c < channels; ++c)
      out[c] = value_of_bit((in[c / 32] >> (c % 32)) & 1u);
  }
}

void bnn_b1_s8_unpack_ukernel__avx2(const word_t* in, std::int64_t rows, std::int64_t channels,
                                    std::int8_t* out) {
  const std::int64_t full = channels / 32, words = words_for(channels);
  for (std::int64_t r = 0; r < rows; ++r, in += words, out += channels) {
    for (std::int64_t w = 0; w < full; ++w)
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 32 * w), unpack32_s8(in[w]));
    for (std::int64_t c = 32 * full; c < channels; ++c)
      out[c] = static_cast<std::int8_t>(1 - 2 * static_cast<int>((in[c / 32] >> (c % 32)) & 1u));
  }
}

}  // namespace bnnkit
