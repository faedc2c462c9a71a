// Reference bit-packing: one bit at a time, straight from bits.h.
#include "kernels/ukernels.h"

namespace bnnkit {
namespace {

template <typename T>
void pack_one_by_one(const T* x, std::int64_t rows, std::int64_t channels, word_t* out) {
  const std::int64_t words = words_for(channels);
  for (std::int64_t r = 0; r < rows; ++r) {
    for (std::int64_t w = 0; w < words; ++w) out[r * words + w] = 0;
    for (std::int64_t c = 0; c < channels; ++c)
      out[r * words + c / 32] |= bit_of(x[r * channels + c]) << (c % 32);
  }
}

template <typename T>
void unpack_one_by_one(const word_t* in, std::int64_t rows, std::int64_t channels, T* out) {
  const std::int64_t words = words_for(channels);
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t c = 0; c < channels; ++c) {
      const word_t bit = (in[r * words + c / 32] >> (c % 32)) & 1u;
      out[r * channels + c] = static_cast<T>(value_of_bit(bit));
    }
}

}  // namespace

void bnn_f32_b1_pack_ukernel__reference(const float* x, std::int64_t rows,
                                        std::int64_t channels, word_t* out) {
  pack_one_by_one(x, rows, channels, out);
}
void bnn_s8_b1_pack_ukernel__reference(const std::int8_t* x, std::int64_t rows,
                                       std::int64_t channels, word_t* out) {
  pack_one_by_one(x, rows, channels, out);
}
void bnn_b1_f32_unpack_ukernel__reference(const word_t* w, std::int64_t rows,
                                          std::int64_t channels, float* out) {
  unpack_one_by_one(w, rows, channels, out);
}
void bnn_b1_s8_unpack_ukernel__reference(const word_t* w, std::int64_t rows,
                                         std::int64_t channels, std::int8_t* out) {
  unpack_one_by_one(w, rows, channels, out);
}

}  // namespace bnnkit
