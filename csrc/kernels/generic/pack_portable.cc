// Portable bit-packing: 32 channels per word, branch-free; compilers vectorize the inner
// loops with the baseline instruction set.
#include "kernels/ukernels.h"

namespace bnnkit {
namespace {

template <typename T>
void pack_rows_portable(const T* x, std::int64_t rows, std::int64_t channels, word_t* out) {
  const std::int64_t words = words_for(channels);
  for (std::int64_t r = 0; r < rows; ++r, x += channels, out += words) {
    for (std::int64_t w = 0; w < words; ++w) {
      const std::int64_t begin = w * 32;
      const int count = static_cast<int>(channels - begin < 32 ? channels - begin : 32);
      word_t word = 0;
      for (int j = 0; j < count; ++j) word |= static_cast<word_t>(x[begin + j] < 0) << j;
      out[w] = word;
    }
  }
}

template <typename T>
void unpack_rows_portable(const word_t* in, std::int64_t rows, std::int64_t channels,
                          T* out) {
  const std::int64_t words = words_for(channels);
  for (std::int64_t r = 0; r < rows; ++r, in += words, out += channels)
    for (std::int64_t c = 0; c < channels; ++c) {
      const int bit = (in[c >> 5] >> (c & 31)) & 1;
      out[c] = static_cast<T>(1 - 2 * bit);
    }
}

}  // namespace

void bnn_f32_b1_pack_ukernel__portable(const float* x, std::int64_t rows,
                                       std::int64_t channels, word_t* out) {
  pack_rows_portable(x, rows, channels, out);
}
void bnn_s8_b1_pack_ukernel__portable(const std::int8_t* x, std::int64_t rows,
                                      std::int64_t channels, word_t* out) {
  pack_rows_portable(x, rows, channels, out);
}
void bnn_b1_f32_unpack_ukernel__portable(const word_t* w, std::int64_t rows,
                                         std::int64_t channels, float* out) {
  unpack_rows_portable(w, rows, channels, out);
}
void bnn_b1_s8_unpack_ukernel__portable(const word_t* w, std::int64_t rows,
                                        std::int64_t channels, std::int8_t* out) {
  unpack_rows_portable(w, rows, channels, out);
}

}  // namespace bnnkit
