// Reference kernels: the direct binary conv2d oracle, a 1x1 popcount GEMM and a
// bit-by-bit max-pool. Written for clarity, not speed.
#include <cmath>
#include <cstring>

#include "kernels/reference/reference.h"
#include "kernels/ukernels.h"

namespace bnnkit {
namespace {

int bit_at(const word_t* row, std::int64_t c) { return (row[c / 32] >> (c % 32)) & 1u; }

// The product of two +-1 values given their bits (bit 1 = -1).
int product(int a_bit, int w_bit) { return a_bit == w_bit ? 1 : -1; }

// Dot product of output (n, oy, ox, o) straight from the definition of the padded conv.
std::int32_t reference_dot(const BConv2DShape& s, const word_t* weights, const word_t* input,
                           std::int64_t n, std::int64_t oy, std::int64_t ox, std::int64_t o) {
  const std::int64_t cg = s.in_channels / s.groups;
  const std::int64_t g = o / (s.out_channels / s.groups);
  const std::int64_t in_words = words_for(s.in_channels), w_words = words_for(cg);
  std::int32_t d = 0;
  for (std::int64_t ky = 0; ky < s.kernel_h; ++ky)
    for (std::int64_t kx = 0; kx < s.kernel_w; ++kx) {
      const word_t* w = weights + ((o * s.kernel_h + ky) * s.kernel_w + kx) * w_words;
      const std::int64_t iy = oy * s.stride_h - s.pad_top + ky * s.dilation_h;
      const std::int64_t ix = ox * s.stride_w - s.pad_left + kx * s.dilation_w;
      const bool inside = iy >= 0 && iy < s.in_h && ix >= 0 && ix < s.in_w;
      const word_t* x = input + ((n * s.in_h + iy) * s.in_w + ix) * in_words;
      for (std::int64_t c = 0; c < cg; ++c) {
        if (inside) d += product(bit_at(x, g * cg + c), bit_at(w, c));
        else if (s.pad_value == 1) d += product(0, bit_at(w, c));
      }
    }
  return d;
}

std::int32_t acc_clamp(const OutputTransform& t, std::int32_t d) {
  return d < t.acc_min ? t.acc_min : (d > t.acc_max ? t.acc_max : d);
}

float transform_float(const OutputTransform& t, std::int64_t o, std::int32_t d) {
  const float m = t.multiplier.empty() ? 1.0f : t.multiplier[o];
  const float b = t.bias.empty() ? 0.0f : t.bias[o];
  const float y = std::fma(static_cast<float>(acc_clamp(t, d)), m, b);  // rounded once
  return std::fmin(std::fmax(y, t.clamp_min), t.clamp_max);
}

// Rule (3) of output_transform.h, evaluated directly (exactly, in double).
word_t transform_bit(const OutputTransform& t, std::int64_t o, std::int32_t d) {
  const double m = t.multiplier.empty() ? 1.0 : t.multiplier[o];
  const double b = t.bias.empty() ? 0.0 : t.bias[o];
  const bool negative = t.clamp_max < 0 || (t.clamp_min < 0 && double(acc_clamp(t, d)) * m + b < 0);
  return negative ? 1u : 0u;
}

}  // namespace

void bconv2d_reference(const BConv2DShape& s, const word_t* weights, const OutputTransform& t,
                       const word_t* input, void* output) {
  const std::int64_t oh = s.out_h(), ow = s.out_w(), co = s.out_channels;
  const std::int64_t out_words = words_for(co);
  for (std::int64_t n = 0; n < s.batch; ++n)
    for (std::int64_t oy = 0; oy < oh; ++oy)
      for (std::int64_t ox = 0; ox < ow; ++ox) {
        const std::int64_t pixel = (n * oh + oy) * ow + ox;
        if (t.kind == OutputKind::kBits)
          std::memset(static_cast<word_t*>(output) + pixel * out_words, 0, out_words * 4);
        for (std::int64_t o = 0; o < co; ++o) {
          const std::int32_t d = reference_dot(s, weights, input, n, oy, ox, o);
          if (t.kind == OutputKind::kInt32)
            static_cast<std::int32_t*>(output)[pixel * co + o] = d;
          else if (t.kind == OutputKind::kFloat)
            static_cast<float*>(output)[pixel * co + o] = transform_float(t, o, d);
          else
            static_cast<word_t*>(output)[pixel * out_words + o / 32] |= transform_bit(t, o, d)
                                                                         << (o % 32);
        }
      }
}

void bnn_b1_gemm_ukernel_1x1__reference(std::int64_t m, std::int64_t n, std::int64_t k64,
                                        const std::uint64_t* a, std::int64_t a_stride,
                                        const std::uint64_t* w, std::int64_t w_stride,
                                        std::int32_t* c, std::int64_t c_stride) {
  for (std::int64_t i = 0; i < m; ++i)
    for (std::int64_t j = 0; j < n; ++j) {
      std::int32_t count = 0;
      for (std::int64_t k = 0; k < k64; ++k) {
        std::uint64_t x = a[i * a_stride + k] ^ w[j * w_stride + k];
        for (; x != 0; x &= x - 1) ++count;  // Kernighan: one step per set bit
      }
      c[i * c_stride + j] = count;
    }
}

// Max of +-1 values per channel over the valid window positions.
void bnn_b1_maxpool_ukernel__reference(const BMaxPoolShape& s, const word_t* in,
                                       word_t* out) {
  const std::int64_t words = words_for(s.channels), oh = s.out_h(), ow = s.out_w();
  for (std::int64_t n = 0; n < s.batch; ++n)
    for (std::int64_t oy = 0; oy < oh; ++oy)
      for (std::int64_t ox = 0; ox < ow; ++ox) {
        word_t* o = out + ((n * oh + oy) * ow + ox) * words;
        std::memset(o, 0, words * 4);
        for (std::int64_t c = 0; c < s.channels; ++c) {
          float best = -INFINITY;
          for (std::int64_t ky = 0; ky < s.kernel_h; ++ky)
            for (std::int64_t kx = 0; kx < s.kernel_w; ++kx) {
              const std::int64_t iy = oy * s.stride_h - s.pad_top + ky;
              const std::int64_t ix = ox * s.stride_w - s.pad_left + kx;
              if (iy < 0 || iy >= s.in_h || ix < 0 || ix >= s.in_w) continue;
              const word_t* x = in + ((n * s.in_h + iy) * s.in_w + ix) * words;
              best = std::fmax(best, value_of_bit(bit_at(x, c)));
            }
          o[c / 32] |= static_cast<word_t>(best < 0) << (c % 32);
        }
      }
}

}  // namespace bnnkit
