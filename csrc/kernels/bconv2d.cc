// Binary conv2d / dense and max-pool on packed bits: shape checks, weight preparation,
// the zero-padding correction, bit thresholds, and the threaded driver that feeds the
// ISA micro-kernels (ukernels.h).
//
// Driver (every path but "reference"): output pixels are processed in chunks of PB.
// For a chunk, each pixel's receptive field is gathered (im2col, per group) into a row of
// k64 64-bit words: the taps' words one after another, out-of-image taps as zero words
// (= +1 values, so pad_value=+1 is exact at no cost), a zero word at the end if the
// count is odd. Weights were laid out the same way once at preparation (as rows, and
// packed by 8 output channels per group for the bgemm_o8 kernels). The bgemm
// micro-kernel then computes popcount(a XOR w) for chunk pixels x output channels
// (channel blocks sized to stay in L1), and the epilogue applies output_transform.h.
// When whole 64-bit words make up a pixel, the o8 kernels read interior pixels in place
// and apply the transform themselves (see gemm_in_place); chunks are then whole rows.
// Pixels are split into near-equal chunks (a multiple of the thread count, several per
// thread) that the pool's threads claim in turn; small convs run on one thread. A pixel's
// result does not depend on its chunk or thread, so outputs are identical for any count.
#include <algorithm>
#include <climits>
#include <cmath>
#include <cstring>
#include <map>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "bnnkit/kernels.h"
#include "bnnkit/thread_pool.h"
#include "kernels/output_transform.h"
#include "kernels/reference/reference.h"
#include "kernels/ukernels.h"

namespace bnnkit {
namespace {

[[noreturn]] void bad(const std::string& what) {
  throw std::invalid_argument("bconv2d: " + what);
}

void require(bool ok, const char* field, std::int64_t value, const char* rule) {
  if (!ok) bad(std::string(field) + " = " + std::to_string(value) + " (" + rule + ")");
}

std::int64_t conv_out(std::int64_t in, std::int64_t pad, std::int64_t k, std::int64_t s,
                      std::int64_t d) {
  const std::int64_t span = in + pad - d * (k - 1) - 1;
  return span < 0 ? 0 : span / s + 1;
}

void same_padding(std::int64_t in, std::int64_t k, std::int64_t s, std::int64_t d,
                  std::int64_t* lo, std::int64_t* hi) {
  const std::int64_t out = (in + s - 1) / s;
  const std::int64_t total = std::max<std::int64_t>((out - 1) * s + d * (k - 1) + 1 - in, 0);
  *lo = total / 2;
  *hi = total - *lo;
}

}  // namespace

// ---- shapes ------------------------------------------------------------------------------

std::int64_t BConv2DShape::out_h() const {
  return conv_out(in_h, pad_top + pad_bottom, kernel_h, stride_h, dilation_h);
}
std::int64_t BConv2DShape::out_w() const {
  return conv_out(in_w, pad_left + pad_right, kernel_w, stride_w, dilation_w);
}

void BConv2DShape::set_same_padding() {
  same_padding(in_h, kernel_h, stride_h, dilation_h, &pad_top, &pad_bottom);
  same_padding(in_w, kernel_w, stride_w, dilation_w, &pad_left, &pad_right);
}

void BConv2DShape::validate() const {
  const struct { const char* name; std::int64_t v; } positive[] = {
      {"batch", batch}, {"in_h", in_h}, {"in_w", in_w}, {"in_channels", in_channels},
      {"out_channels", out_channels}, {"kernel_h", kernel_h}, {"kernel_w", kernel_w},
      {"stride_h", stride_h}, {"stride_w", stride_w}, {"dilation_h", dilation_h},
      {"dilation_w", dilation_w}, {"groups", groups}};
  for (const auto& f : positive) require(f.v >= 1 && f.v <= (1LL << 30), f.name, f.v, "must be in [1, 2^30]");
  const struct { const char* name; std::int64_t v; } pads[] = {
      {"pad_top", pad_top}, {"pad_bottom", pad_bottom}, {"pad_left", pad_left}, {"pad_right", pad_right}};
  for (const auto& f : pads) require(f.v >= 0 && f.v <= (1LL << 20), f.name, f.v, "must be in [0, 2^20]");
  require(in_channels % groups == 0, "in_channels", in_channels, "must be divisible by groups");
  require(out_channels % groups == 0, "out_channels", out_channels, "must be divisible by groups");
  require(pad_value == 0 || pad_value == 1, "pad_value", pad_value, "must be 0 or +1");
  require(out_h() >= 1, "out_h", out_h(), "kernel larger than the padded input");
  require(out_w() >= 1, "out_w", out_w(), "kernel larger than the padded input");
  const std::int64_t k_bits = kernel_h * kernel_w * (in_channels / groups);
  require(k_bits < (1LL << 28), "kernel_h*kernel_w*in_channels/groups", k_bits, "must be < 2^28");
}

BConv2DShape BConv2DShape::dense(std::int64_t batch, std::int64_t in_features,
                                 std::int64_t out_features) {
  BConv2DShape s;
  s.batch = batch;
  s.in_channels = in_features;
  s.out_channels = out_features;
  return s;
}

std::int64_t BMaxPoolShape::out_h() const { return conv_out(in_h, pad_top + pad_bottom, kernel_h, stride_h, 1); }
std::int64_t BMaxPoolShape::out_w() const { return conv_out(in_w, pad_left + pad_right, kernel_w, stride_w, 1); }

void BMaxPoolShape::validate() const {
  const struct { const char* name; std::int64_t v; } positive[] = {
      {"batch", batch}, {"in_h", in_h}, {"in_w", in_w}, {"channels", channels},
      {"kernel_h", kernel_h}, {"kernel_w", kernel_w}, {"stride_h", stride_h}, {"stride_w", stride_w}};
  for (const auto& f : positive) require(f.v >= 1 && f.v <= (1LL << 30), f.name, f.v, "must be in [1, 2^30]");
  require(pad_top >= 0 && pad_top < kernel_h, "pad_top", pad_top, "must be in [0, kernel_h)");
  require(pad_bottom >= 0 && pad_bottom < kernel_h, "pad_bottom", pad_bottom, "must be in [0, kernel_h)");
  require(pad_left >= 0 && pad_left < kernel_w, "pad_left", pad_left, "must be in [0, kernel_w)");
  require(pad_right >= 0 && pad_right < kernel_w, "pad_right", pad_right, "must be in [0, kernel_w)");
  require(out_h() >= 1 && out_w() >= 1, "out_h*out_w", out_h() * out_w(), "window larger than the input");
}

void bmaxpool2d(const BMaxPoolShape& shape, const word_t* input, word_t* output, KernelPath path) {
  shape.validate();
  kernel_table(path).maxpool(shape, input, output);
}

// ---- bit thresholds (rule (3) of output_transform.h) -------------------------------------

namespace {
// The threshold of the unclamped rule (bit iff d < t for m > 0, d > t for m < 0) under the
// accumulator clamp (1'): unchanged inside (amin, amax], else "always" or "never".
std::int32_t clamped_threshold(bool positive, std::int64_t t, std::int32_t amin, std::int32_t amax) {
  if (positive) {
    if (t <= amin) return INT32_MIN;
    if (t > amax) return INT32_MAX;
  } else {
    if (t >= amax) return INT32_MIN;
    if (t < amin) return INT32_MAX;
  }
  return static_cast<std::int32_t>(t);
}
}  // namespace

void compute_bit_thresholds(std::int64_t n, std::int32_t k_bits, const float* multiplier,
                            const float* bias, float lo, float hi, std::int32_t acc_min,
                            std::int32_t acc_max, std::int32_t* sign, std::int32_t* threshold) {
  const std::int64_t edge = static_cast<std::int64_t>(k_bits) + 2;
  for (std::int64_t o = 0; o < n; ++o) {
    const double m = multiplier[o], b = bias[o];
    const auto negative = [&](std::int64_t d) { return double(d) * m + b < 0; };
    sign[o] = 1;
    if (hi < 0 || lo >= 0 || m == 0) {  // constant: always -1 or always +1
      const bool always = hi < 0 || (lo < 0 && m == 0 && b < 0);
      threshold[o] = always ? INT32_MAX : INT32_MIN;
      continue;
    }
    const double est = m > 0 ? std::ceil(-b / m) : std::floor(-b / m);
    std::int64_t t = static_cast<std::int64_t>(std::clamp(est, double(-edge), double(edge)));
    if (m > 0) {  // smallest t with !negative(t)
      while (t > -edge && !negative(t - 1)) --t;
      while (t < edge && negative(t)) ++t;
    } else {      // largest t with !negative(t)
      while (t < edge && !negative(t + 1)) ++t;
      while (t > -edge && negative(t)) --t;
    }
    threshold[o] = clamped_threshold(m > 0, t, acc_min, acc_max);
    if (m < 0 && threshold[o] != INT32_MIN && threshold[o] != INT32_MAX) {
      sign[o] = -1;
      threshold[o] = static_cast<std::int32_t>(-t);
    }
  }
}

// ---- work split --------------------------------------------------------------------------

namespace {
// Below this many (pixel x output channel x 64-bit word) steps, about 8 M binary MACs or
// ~25 us on one AVX2 core, waking a second thread (~10 us) costs more than it saves.
constexpr std::int64_t kMinParallelWork = std::int64_t(1) << 17;
constexpr std::int64_t kMaxChunk = 64;       // pixels per GEMM call (A rows stay in L1)
constexpr std::int64_t kMinChunk = 8;        // smaller chunks re-read the weights too often
constexpr std::int64_t kMinInPlaceRun = 24;  // interior pixels per output row to read in place
constexpr std::int64_t kChunksPerThread = 4; // so a thread that starts late still gets a share

// Threads worth using: 1 without a pool or when the work is too small to pay for waking.
std::int64_t parallel_threads(const ThreadPool* pool, std::int64_t work) {
  if (pool == nullptr || pool->num_threads() == 1 || work < kMinParallelWork) return 1;
  return pool->num_threads();
}

// Number of near-equal pixel chunks: at most kMaxChunk pixels each; with T > 1 threads at
// least kChunksPerThread * T chunks (chunks of >= kMinChunk pixels allowing) and a multiple
// of T, so every thread gets the same share. The split never changes a result: every
// pixel's popcounts are exact integers and its epilogue depends on that pixel alone.
std::int64_t pixel_chunks(std::int64_t pixels, std::int64_t threads) {
  std::int64_t c = (pixels + kMaxChunk - 1) / kMaxChunk;
  if (threads == 1) return c;
  c = std::max(c, std::min(kChunksPerThread * threads, pixels / kMinChunk));
  c = (c + threads - 1) / threads * threads;
  return std::min(c, pixels);
}
}  // namespace

// ---- prepared conv -----------------------------------------------------------------------

struct BConv2D::Impl {
  BConv2DShape s;
  OutputTransform t;
  std::vector<word_t> weights;                 // as given (OHWI), for the reference path
  std::int64_t oh = 0, ow = 0;                 // output height / width
  std::int64_t cg = 0, og = 0, wg = 0;         // channels / out channels / words per group
  std::int64_t k_words = 0, k64 = 0;           // words per receptive field; 64-bit words
  std::int32_t k_bits = 0;
  std::vector<std::uint64_t> w64;              // (O, k64) rows, zero tail
  std::vector<std::uint64_t> w_o8;             // per group: ceil(og / 8) blocks of (k64, 8)
  std::int64_t o8_blocks = 0;                  // 8-channel blocks per group
  // In-place reading for the o8 kernels (see gemm_in_place): groups == 1, whole 64-bit
  // words per pixel, dilation_w == 1. Output columns [ox_lo, ox_hi) have every tap inside
  // the image in x; `flat`: 1x1, stride 1, no padding (the input is the GEMM operand).
  bool in_place = false, flat = false;
  std::int64_t in64 = 0, ox_lo = 0, ox_hi = 0;
  std::vector<std::uint64_t> zeros;            // what kernel rows in the padding read
  std::vector<float> multiplier, bias;         // (O)
  std::vector<std::int32_t> sign, threshold;   // (O)
  // Zero-padding correction: class of each output row / column, and per class pair the
  // (O) values to subtract (empty when pad_value = +1 or there is no padding).
  std::vector<std::int32_t> row_class, col_class;
  std::int64_t num_col_classes = 0;
  std::vector<std::int32_t> correction;
  std::vector<char> class_has_correction;

  void prepare_weights();
  void prepare_transform();
  void prepare_correction();
  void im2col(const word_t* input, std::int64_t p0, std::int64_t p1, std::int64_t g,
              std::uint64_t* rows) const;
  void im2col_pixel(const word_t* input, std::int64_t n, std::int64_t oy, std::int64_t ox,
                    std::int64_t g, std::uint64_t* row) const;
  char* gather_group_words(char* dst, const word_t* x, std::int64_t g) const;
  void prepare_in_place();
  void gemm_group(const Bgemm& gemm, std::int64_t g, std::int64_t m, const std::uint64_t* a,
                  std::int32_t* pop) const;
  void gemm_o8(const Bgemm& gemm, std::int64_t g, std::int64_t m, std::int64_t segments,
               const std::uint64_t* const* a, std::int64_t a_stride, std::int32_t* pop,
               const O8Fused* fused = nullptr) const;
  EpilogueParams epilogue_params() const;
  const std::int32_t* correction_of(std::int64_t q) const;
  void epilogue(const KernelTable& kt, EpilogueParams p, const std::int32_t* pop, void* output,
                std::int64_t q0, std::int64_t q1) const;
  void gemm_in_place(const KernelTable& kt, const Bgemm& gemm, const word_t* input, void* output,
                     std::int64_t p0, std::int64_t p1, std::vector<std::uint64_t>& a,
                     std::int32_t* pop) const;
  void run_chunk(const KernelTable& kt, const Bgemm& gemm, const word_t* input, void* output,
                 std::int64_t p0, std::int64_t p1, std::vector<std::uint64_t>& a,
                 std::vector<std::int32_t>& pop) const;
};

void BConv2D::Impl::prepare_weights() {
  w64.assign(s.out_channels * k64, 0);
  for (std::int64_t o = 0; o < s.out_channels; ++o)
    std::memcpy(w64.data() + o * k64, weights.data() + o * k_words, k_words * sizeof(word_t));
  o8_blocks = (og + 7) / 8;
  w_o8.assign(s.groups * o8_blocks * k64 * 8, 0);
  for (std::int64_t g = 0; g < s.groups; ++g)
    pack_weights_o8(og, k64, w64.data() + g * og * k64, w_o8.data() + g * o8_blocks * k64 * 8);
}

void BConv2D::Impl::prepare_in_place() {
  in_place = s.groups == 1 && s.in_channels % 64 == 0 && s.dilation_w == 1;
  if (!in_place) return;
  in64 = s.in_channels / 64;
  flat = s.kernel_h == 1 && s.kernel_w == 1 && s.stride_h == 1 && s.stride_w == 1 &&
         s.pad_top + s.pad_bottom + s.pad_left + s.pad_right == 0;
  ox_lo = std::min(ow, (s.pad_left + s.stride_w - 1) / s.stride_w);
  const std::int64_t last = s.in_w - s.kernel_w + s.pad_left;  // ox * stride_w <= last
  ox_hi = last < 0 ? ox_lo : std::clamp(last / s.stride_w + 1, ox_lo, ow);
  // Runs split at every output row and image border, and short runs leave the 6-pixel tiles
  // half empty: in place is only used for rows with kMinInPlaceRun interior pixels or more
  // (measured side by side, 1 thread, 3x3 'same': 56x56x64 19% faster in place, 28x28x128
  // even, 14x14x256 14% and 7x7x512 28% slower than im2col of whole chunks).
  if (!flat && ox_hi - ox_lo < kMinInPlaceRun) {
    in_place = false;
    return;
  }
  zeros.assign((ow - 1) * s.stride_w * in64 + s.kernel_w * in64, 0);  // a run is at most a row
}

void BConv2D::Impl::prepare_transform() {
  const std::int64_t n = s.out_channels;
  multiplier = t.multiplier.empty() ? std::vector<float>(n, 1.0f) : t.multiplier;
  bias = t.bias.empty() ? std::vector<float>(n, 0.0f) : t.bias;
  if (static_cast<std::int64_t>(multiplier.size()) != n || static_cast<std::int64_t>(bias.size()) != n)
    bad("multiplier and bias need out_channels = " + std::to_string(n) + " values (or none)");
  for (std::int64_t o = 0; o < n; ++o)
    if (!std::isfinite(multiplier[o]) || !std::isfinite(bias[o]))
      bad("multiplier/bias of channel " + std::to_string(o) + " is not finite");
  if (std::isnan(t.clamp_min) || std::isnan(t.clamp_max) || t.clamp_min > t.clamp_max)
    bad("clamp needs clamp_min <= clamp_max (no NaN)");
  sign.resize(n);
  threshold.resize(n);
  if (t.acc_min > t.acc_max) bad("acc clamp needs acc_min <= acc_max");
  compute_bit_thresholds(n, k_bits, multiplier.data(), bias.data(), t.clamp_min, t.clamp_max,
                         t.acc_min, t.acc_max, sign.data(), threshold.data());
}

namespace {
// Class index of each output position along one axis: positions whose taps fall in the
// padding in the same way share a class. valid[class][k] says whether tap k is inside.
std::vector<std::int32_t> classify(std::int64_t out, std::int64_t in, std::int64_t pad,
                                   std::int64_t k, std::int64_t stride, std::int64_t dil,
                                   std::vector<std::vector<char>>* valid) {
  std::map<std::vector<char>, std::int32_t> index;
  std::vector<std::int32_t> cls(out);
  for (std::int64_t o = 0; o < out; ++o) {
    std::vector<char> v(k);
    for (std::int64_t t = 0; t < k; ++t) {
      const std::int64_t i = o * stride - pad + t * dil;
      v[t] = i >= 0 && i < in;
    }
    auto it = index.emplace(v, static_cast<std::int32_t>(valid->size())).first;
    if (it->second == static_cast<std::int32_t>(valid->size())) valid->push_back(v);
    cls[o] = it->second;
  }
  return cls;
}
}  // namespace

void BConv2D::Impl::prepare_correction() {
  if (s.pad_value != 0 || s.pad_top + s.pad_bottom + s.pad_left + s.pad_right == 0) return;
  std::vector<std::vector<char>> vy, vx;
  row_class = classify(s.out_h(), s.in_h, s.pad_top, s.kernel_h, s.stride_h, s.dilation_h, &vy);
  col_class = classify(s.out_w(), s.in_w, s.pad_left, s.kernel_w, s.stride_w, s.dilation_w, &vx);
  num_col_classes = static_cast<std::int64_t>(vx.size());
  const std::int64_t n = s.out_channels;
  correction.assign(vy.size() * vx.size() * n, 0);
  class_has_correction.assign(vy.size() * vx.size(), 0);
  for (std::size_t cy = 0; cy < vy.size(); ++cy)
    for (std::size_t cx = 0; cx < vx.size(); ++cx) {
      const std::size_t c = cy * vx.size() + cx;
      for (std::int64_t ky = 0; ky < s.kernel_h; ++ky)
        for (std::int64_t kx = 0; kx < s.kernel_w; ++kx) {
          if (vy[cy][ky] && vx[cx][kx]) continue;
          class_has_correction[c] = 1;
          for (std::int64_t o = 0; o < n; ++o) {  // this padded tap's +1-padding contribution
            const word_t* w = weights.data() + ((o * s.kernel_h + ky) * s.kernel_w + kx) * wg;
            std::int32_t ones = 0;
            for (std::int64_t i = 0; i < wg; ++i) ones += __builtin_popcount(w[i]);
            correction[c * n + o] += static_cast<std::int32_t>(cg) - 2 * ones;
          }
        }
    }
}

namespace {
// Copies n words, two at a time (inline: the counts are small and vary, so no memcpy call).
inline char* copy_words(char* dst, const word_t* src, std::int64_t n) {
  std::int64_t i = 0;
  for (; i + 2 <= n; i += 2) std::memcpy(dst + 4 * i, src + i, 8);
  if (i < n) std::memcpy(dst + 4 * i, src + i, 4);
  return dst + 4 * n;
}
inline char* zero_words(char* dst, std::int64_t n) {
  std::int64_t i = 0;
  for (; i + 2 <= n; i += 2) std::memset(dst + 4 * i, 0, 8);
  if (i < n) std::memset(dst + 4 * i, 0, 4);
  return dst + 4 * n;
}
}  // namespace

// Receptive fields of output pixels [p0, p1) for group g, k64 words each (rows of `rows`);
// the pixel's coordinates are stepped, not divided out, per pixel.
void BConv2D::Impl::im2col(const word_t* input, std::int64_t p0, std::int64_t p1,
                           std::int64_t g, std::uint64_t* rows) const {
  std::int64_t ox = p0 % ow, oy = (p0 / ow) % oh, n = p0 / (ow * oh);
  for (std::int64_t p = p0; p < p1; ++p, rows += k64) {
    im2col_pixel(input, n, oy, ox, g, rows);
    if (++ox == ow) {
      ox = 0;
      if (++oy == oh) {
        oy = 0;
        ++n;
      }
    }
  }
}

// Receptive field of output pixel (n, oy, ox) for group g (see the top comment).
void BConv2D::Impl::im2col_pixel(const word_t* input, std::int64_t n, std::int64_t oy,
                                 std::int64_t ox, std::int64_t g, std::uint64_t* row) const {
  const std::int64_t in_words = words_for(s.in_channels);
  const bool aligned = s.groups == 1 || cg % 32 == 0;
  char* dst = reinterpret_cast<char*>(row);
  row[k64 - 1] = 0;
  const std::int64_t ix0 = ox * s.stride_w - s.pad_left;
  const std::int64_t ix_last = ix0 + (s.kernel_w - 1) * s.dilation_w;
  // groups == 1, dilation 1, whole kernel row inside: the row's taps are contiguous words.
  const bool row_contiguous = s.groups == 1 && s.dilation_w == 1 && ix0 >= 0 && ix_last < s.in_w;
  for (std::int64_t ky = 0; ky < s.kernel_h; ++ky) {
    const std::int64_t iy = oy * s.stride_h - s.pad_top + ky * s.dilation_h;
    if (iy < 0 || iy >= s.in_h) {
      dst = zero_words(dst, s.kernel_w * wg);
      continue;
    }
    const word_t* x_row = input + (n * s.in_h + iy) * s.in_w * in_words;
    if (row_contiguous) {
      dst = copy_words(dst, x_row + ix0 * in_words, s.kernel_w * wg);
      continue;
    }
    for (std::int64_t kx = 0; kx < s.kernel_w; ++kx) {
      const std::int64_t ix = ix0 + kx * s.dilation_w;
      if (ix < 0 || ix >= s.in_w) {
        dst = zero_words(dst, wg);
      } else if (aligned) {
        dst = copy_words(dst, x_row + ix * in_words + g * wg, wg);
      } else {
        dst = gather_group_words(dst, x_row + ix * in_words, g);
      }
    }
  }
}

// Group g's cg channels of one pixel when they do not start on a word boundary.
char* BConv2D::Impl::gather_group_words(char* dst, const word_t* x, std::int64_t g) const {
  for (std::int64_t i = 0; i < wg; ++i) {
    word_t word = 0;
    for (std::int64_t b = 0; b < 32 && i * 32 + b < cg; ++b) {
      const std::int64_t c = g * cg + i * 32 + b;
      word |= ((x[c / 32] >> (c % 32)) & 1u) << b;
    }
    std::memcpy(dst + i * sizeof(word_t), &word, sizeof(word_t));
  }
  return dst + wg * sizeof(word_t);
}

// Popcounts of m pixels (rows of pop) against group g's channels with an o8 kernel, in
// channel blocks whose weights stay in L1 (32 KiB, multiples of the 32-channel tile); with
// `fused`, the outputs of those pixels instead (fused->channel0 = g * og).
void BConv2D::Impl::gemm_o8(const Bgemm& gemm, std::int64_t g, std::int64_t m,
                            std::int64_t segments, const std::uint64_t* const* a,
                            std::int64_t a_stride, std::int32_t* pop, const O8Fused* fused) const {
  const std::int64_t block = std::max<std::int64_t>(32, (32768 / (k64 * 8)) / 32 * 32);
  const std::uint64_t* wg8 = w_o8.data() + g * o8_blocks * k64 * 8;
  for (std::int64_t j = 0; j < og; j += block) {
    O8Fused fj;
    if (fused != nullptr) {
      fj = *fused;
      fj.channel0 += j;
    }
    gemm.o8(m, std::min(block, og - j), k64, segments, a, a_stride, wg8 + (j / 8) * k64 * 8,
            fused ? nullptr : pop + g * og + j, s.out_channels, fused ? &fj : nullptr);
  }
}

// Popcounts of m im2col rows against group g's channels (rows kernels: channel blocks of
// 16 KiB of weights).
void BConv2D::Impl::gemm_group(const Bgemm& gemm, std::int64_t g, std::int64_t m,
                               const std::uint64_t* a, std::int32_t* pop) const {
  const std::int64_t n = s.out_channels;
  if (gemm.o8 != nullptr) {
    gemm_o8(gemm, g, m, 1, &a, k64, pop);
    return;
  }
  const std::int64_t block = std::max<std::int64_t>(4, (16384 / (k64 * 8)) / 4 * 4);
  for (std::int64_t j = 0; j < og; j += block)
    gemm.rows(m, std::min(block, og - j), k64, a, k64, w64.data() + (g * og + j) * k64, k64,
              pop + g * og + j, n);
}

// In place (o8 kernels; see prepare_in_place): kernel row ky of output pixel (n, oy, ox) is
// kernel_w * in64 contiguous 64-bit words of the input when its taps are inside the image in
// x, and the next pixel of the output row starts stride_w * in64 words later; so a run of
// such pixels is one GEMM call with one segment per kernel row, reading the input where it
// lies (a kernel row in the top/bottom padding reads zero words: +1 values, corrected like
// im2col's when pad_value = 0). The other pixels (left/right borders) go through im2col.
// A run's pixels share one correction class (one output row, every tap inside in x), so
// for float and bit output the kernel applies the output transform itself (O8Fused) and
// no popcounts go through memory. The border pixels of the chunk are gathered into one
// GEMM call (full tiles rather than one latency-bound pixel per call), then take the
// epilogue kernels. `pop` holds an inside run's popcounts (int32 output) at its offset
// from p0 until its epilogue, right after its GEMM; the border pixels' popcounts then
// fill it from the start.
void BConv2D::Impl::gemm_in_place(const KernelTable& kt, const Bgemm& gemm, const word_t* input,
                                  void* output, std::int64_t p0, std::int64_t p1,
                                  std::vector<std::uint64_t>& a, std::int32_t* pop) const {
  const auto* x64 = reinterpret_cast<const std::uint64_t*>(input);
  const std::int64_t step = s.stride_w * in64, n = s.out_channels;
  const bool fuse = t.kind != OutputKind::kInt32;
  const std::int64_t out_stride = t.kind == OutputKind::kBits ? words_for(n) : n;
  const EpilogueParams params = epilogue_params();
  thread_local std::vector<const std::uint64_t*> segs;
  thread_local std::vector<std::pair<std::int64_t, std::int64_t>> borders;
  segs.resize(s.kernel_h);
  borders.clear();
  std::int64_t border_pixels = 0;
  for (std::int64_t q = p0; q < p1;) {
    const std::int64_t ox = q % ow, row = q / ow, oy = row % oh, nb = row / oh;
    const bool inside = flat || (ox >= ox_lo && ox < ox_hi);
    const std::int64_t stop = flat ? p1 : q - ox + (inside ? ox_hi : ox < ox_lo ? ox_lo : ow);
    const std::int64_t end = std::min(p1, stop);
    if (inside && flat) {
      segs[0] = x64 + q * in64;
    } else if (inside) {
      const std::int64_t ix0 = ox * s.stride_w - s.pad_left;
      for (std::int64_t ky = 0; ky < s.kernel_h; ++ky) {
        const std::int64_t iy = oy * s.stride_h - s.pad_top + ky * s.dilation_h;
        segs[ky] = iy < 0 || iy >= s.in_h ? zeros.data()
                                          : x64 + ((nb * s.in_h + iy) * s.in_w + ix0) * in64;
      }
    }
    if (inside && fuse) {
      EpilogueParams p = params;
      p.correction = correction_of(q);
      O8Fused f;
      f.p = &p;
      f.kind = t.kind;
      f.out = t.kind == OutputKind::kBits
                  ? static_cast<void*>(static_cast<word_t*>(output) + q * out_stride)
                  : static_cast<void*>(static_cast<float*>(output) + q * out_stride);
      f.out_stride = out_stride;
      gemm_o8(gemm, 0, end - q, s.kernel_h, segs.data(), step, nullptr, &f);
    } else if (inside) {
      std::int32_t* counts = pop + (q - p0) * n;
      gemm_o8(gemm, 0, end - q, s.kernel_h, segs.data(), step, counts);
      epilogue(kt, params, counts, output, q, end);
    } else {  // border pixels: gathered for one GEMM call below
      borders.push_back({q, end});
      im2col(input, q, end, 0, a.data() + border_pixels * k64);
      border_pixels += end - q;
    }
    q = end;
  }
  if (border_pixels == 0) return;
  gemm_group(gemm, 0, border_pixels, a.data(), pop);
  for (const auto& run : borders) {
    epilogue(kt, params, pop, output, run.first, run.second);
    pop += (run.second - run.first) * n;
  }
}

EpilogueParams BConv2D::Impl::epilogue_params() const {
  EpilogueParams p;
  p.n = s.out_channels;
  p.k_bits = k_bits;
  p.multiplier = multiplier.data();
  p.bias = bias.data();
  p.clamp_min = t.clamp_min;
  p.clamp_max = t.clamp_max;
  p.acc_min = t.acc_min;
  p.acc_max = t.acc_max;
  p.sign = sign.data();
  p.threshold = threshold.data();
  return p;
}

// The zero-padding correction of output pixel q (n values), or null when it has none.
const std::int32_t* BConv2D::Impl::correction_of(std::int64_t q) const {
  if (correction.empty()) return nullptr;
  const std::int64_t c = row_class[(q / ow) % oh] * num_col_classes + col_class[q % ow];
  return class_has_correction[c] ? correction.data() + c * s.out_channels : nullptr;
}

// The epilogue kernel of output pixels [q0, q1), whose popcounts are rows of `pop`.
void BConv2D::Impl::epilogue(const KernelTable& kt, EpilogueParams p, const std::int32_t* pop,
                             void* output, std::int64_t q0, std::int64_t q1) const {
  const std::int64_t n = s.out_channels;
  for (std::int64_t q = q0; q < q1; ++q) {
    p.correction = correction_of(q);
    const std::int32_t* counts = pop + (q - q0) * n;
    if (t.kind == OutputKind::kFloat) kt.epilogue_f32(p, counts, static_cast<float*>(output) + q * n);
    else if (t.kind == OutputKind::kBits) kt.epilogue_b1(p, counts, static_cast<word_t*>(output) + q * words_for(n));
    else kt.epilogue_s32(p, counts, static_cast<std::int32_t*>(output) + q * n);
  }
}

// Output pixels [p0, p1): im2col per group (or in place), popcount GEMM, epilogue.
void BConv2D::Impl::run_chunk(const KernelTable& kt, const Bgemm& gemm, const word_t* input,
                              void* output, std::int64_t p0, std::int64_t p1,
                              std::vector<std::uint64_t>& a, std::vector<std::int32_t>& pop) const {
  if (gemm.o8 != nullptr && in_place) {
    gemm_in_place(kt, gemm, input, output, p0, p1, a, pop.data());
    return;
  }
  for (std::int64_t g = 0; g < s.groups; ++g) {
    im2col(input, p0, p1, g, a.data());
    gemm_group(gemm, g, p1 - p0, a.data(), pop.data());
  }
  epilogue(kt, epilogue_params(), pop.data(), output, p0, p1);
}

BConv2D::BConv2D(const BConv2DShape& shape, const word_t* weights, const OutputTransform& t)
    : impl_(new Impl) {
  try {
    Impl& im = *impl_;
    shape.validate();
    if (weights == nullptr) bad("weights is null");
    im.s = shape;
    im.t = t;
    im.oh = shape.out_h();
    im.ow = shape.out_w();
    im.cg = shape.in_channels / shape.groups;
    im.og = shape.out_channels / shape.groups;
    im.wg = words_for(im.cg);
    im.k_words = shape.kernel_h * shape.kernel_w * im.wg;
    im.k64 = (im.k_words + 1) / 2;
    im.k_bits = static_cast<std::int32_t>(shape.kernel_h * shape.kernel_w * im.cg);
    im.weights.assign(weights, weights + shape.out_channels * im.k_words);
    im.prepare_weights();
    im.prepare_transform();
    im.prepare_correction();
    im.prepare_in_place();
  } catch (...) {
    delete impl_;
    throw;
  }
}

BConv2D::~BConv2D() { delete impl_; }
BConv2D::BConv2D(BConv2D&& other) noexcept : impl_(other.impl_) { other.impl_ = nullptr; }
BConv2D& BConv2D::operator=(BConv2D&& other) noexcept {
  std::swap(impl_, other.impl_);
  return *this;
}

const BConv2DShape& BConv2D::shape() const { return impl_->s; }
OutputKind BConv2D::output_kind() const { return impl_->t.kind; }
std::int64_t BConv2D::output_elements() const {
  const BConv2DShape& s = impl_->s;
  const std::int64_t per_pixel =
      impl_->t.kind == OutputKind::kBits ? words_for(s.out_channels) : s.out_channels;
  return s.batch * s.out_h() * s.out_w() * per_pixel;
}

void BConv2D::run(const word_t* input, void* output, ThreadPool* pool, KernelPath path,
                  const char* gemm_variant) const {
  if (input == nullptr || output == nullptr) bad("input or output is null");
  const KernelTable& kt = kernel_table(path);
  const Impl& im = *impl_;
  if (kt.path == KernelPath::kReference && gemm_variant == nullptr) {
    bconv2d_reference(im.s, im.weights.data(), im.t, input, output);
    return;
  }
  const Bgemm gemm = gemm_variant ? find_bgemm_variant(kt.path, gemm_variant) : kt.bgemm;
  const std::int64_t pixels = im.s.batch * im.oh * im.ow;
  const std::int64_t threads = parallel_threads(pool, pixels * im.s.out_channels * im.k64);
  // Read in place, chunks are whole output rows: a row's interior is one GEMM call of full
  // tiles, not two pieces cut at a chunk edge, and its borders share one call.
  const std::int64_t unit = gemm.o8 != nullptr && im.in_place && !im.flat ? im.ow : 1;
  const std::int64_t units = pixels / unit;
  const std::int64_t chunks = std::min(pixel_chunks(pixels, threads), units);
  const std::int64_t max_chunk = (units + chunks - 1) / chunks * unit;
  const auto body = [&](std::int64_t u0, std::int64_t u1) {
    const std::int64_t p0 = u0 * unit, p1 = u1 * unit;
    thread_local std::vector<std::uint64_t> a;
    thread_local std::vector<std::int32_t> pop;
    if (static_cast<std::int64_t>(a.size()) < max_chunk * im.k64) a.resize(max_chunk * im.k64);
    if (static_cast<std::int64_t>(pop.size()) < max_chunk * im.s.out_channels)
      pop.resize(max_chunk * im.s.out_channels);
    im.run_chunk(kt, gemm, input, output, p0, p1, a, pop);
  };
  if (threads > 1) pool->parallel_for(units, body, chunks);
  else for (std::int64_t c = 0; c < chunks; ++c) body(units * c / chunks, units * (c + 1) / chunks);
}

}  // namespace bnnkit
