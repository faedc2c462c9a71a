// bnnkit binary kernels: bit-packing, binary conv2d / dense with a fused output
// transform, and max-pool on packed bits — the public C++ API the runtime calls.
//
// Usage (all shapes NHWC, bit conventions of bnnkit/bits.h):
//
//   #include "bnnkit/kernels.h"
//   // float/int8 rows -> packed words (rows x words_for(C)) and back
//   bnnkit::pack_rows(x, rows, channels, packed);
//   bnnkit::unpack_rows(packed, rows, channels, y);
//
//   // binary conv: prepare once per layer (validates, pads and splits the weights,
//   // precomputes thresholds and the zero-padding correction), run many times
//   bnnkit::BConv2DShape s;  // batch, in_h, in_w, in_channels, out_channels, kernel...
//   s.batch = 1; s.in_h = s.in_w = 56; s.in_channels = s.out_channels = 64;
//   s.kernel_h = s.kernel_w = 3; s.set_same_padding();   // or leave pads at 0 ('valid')
//   bnnkit::OutputTransform t;  // per-channel multiplier/bias, clamp, output kind
//   t.kind = bnnkit::OutputKind::kBits;  t.multiplier = bn_scale;  t.bias = bn_shift;
//   bnnkit::BConv2D conv(s, packed_weights_ohwi, t);
//   bnnkit::ThreadPool pool(2);
//   conv.run(packed_input_nhwc, output, &pool);  // float*, word_t* or int32_t* by t.kind
//
// Kernel paths ("reference", "portable", "avx2", "avx512", "neon"): the best one the CPU
// supports is chosen at start-up; BNNKIT_KERNELS=<path> overrides it, and
// set_active_kernel_path() switches it in-process (tests). Every kernel variant is named
// once in csrc/kernels/manifest.inc (listed by kernel_manifest()). Errors are thrown as
// std::invalid_argument (bad arguments) or std::runtime_error (unsupported path).
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "bnnkit/bits.h"

namespace bnnkit {

class ThreadPool;

// ---- kernel paths and dispatch -------------------------------------------------------

enum class KernelPath : int { kAuto = -1, kReference = 0, kPortable, kAvx2, kAvx512, kNeon };
constexpr int kNumKernelPaths = 5;

const char* kernel_path_name(KernelPath path);
// Parses a path name; throws std::invalid_argument listing the known names.
KernelPath parse_kernel_path(const std::string& name);
// Empty if `path` is compiled in and the CPU/OS support it, else the reason it is not.
std::string kernel_path_unsupported_reason(KernelPath path);
inline bool kernel_path_supported(KernelPath path) {
  return kernel_path_unsupported_reason(path).empty();
}
std::vector<KernelPath> supported_kernel_paths();
KernelPath best_kernel_path();
// The path kernels use when called with KernelPath::kAuto: BNNKIT_KERNELS if set (read
// once; an unknown or unsupported value throws on every call until it is overridden by
// set_active_kernel_path), else best_kernel_path().
KernelPath active_kernel_path();
// Throws std::runtime_error if the path is not supported here.
void set_active_kernel_path(KernelPath path);

// One line of the manifest: which op, which path, the variant's full name.
struct KernelInfo {
  const char* op;    // "pack_f32", "pack_s8", "unpack_f32", "unpack_s8", "bgemm", ...
  KernelPath path;
  const char* name;  // e.g. "bnn_b1_gemm_ukernel_2x4__avx2_lut"
  bool is_default;   // the variant the path uses unless another is asked for by name
};
std::vector<KernelInfo> kernel_manifest();

// ---- bit-packing -----------------------------------------------------------------------

// rows x channels values (channels innermost) -> rows x words_for(channels) words.
void pack_rows(const float* x, std::int64_t rows, std::int64_t channels, word_t* out,
               KernelPath path = KernelPath::kAuto);
void pack_rows(const std::int8_t* x, std::int64_t rows, std::int64_t channels, word_t* out,
               KernelPath path = KernelPath::kAuto);
// rows x words_for(channels) words -> rows x channels values of +1 / -1.
void unpack_rows(const word_t* words, std::int64_t rows, std::int64_t channels, float* out,
                 KernelPath path = KernelPath::kAuto);
void unpack_rows(const word_t* words, std::int64_t rows, std::int64_t channels,
                 std::int8_t* out, KernelPath path = KernelPath::kAuto);

// ---- binary conv2d / dense -------------------------------------------------------------

struct BConv2DShape {
  std::int64_t batch = 1, in_h = 1, in_w = 1, in_channels = 1;
  std::int64_t out_channels = 1, kernel_h = 1, kernel_w = 1;
  std::int64_t stride_h = 1, stride_w = 1, dilation_h = 1, dilation_w = 1;
  std::int64_t pad_top = 0, pad_bottom = 0, pad_left = 0, pad_right = 0;
  std::int64_t groups = 1;
  int pad_value = 1;  // value of padded taps: +1 (free in the packed domain) or 0 (corrected)

  std::int64_t out_h() const;
  std::int64_t out_w() const;
  // PyTorch padding='same' for stride 1 (total = dilation*(kernel-1), extra on bottom/right);
  // for stride > 1 the TensorFlow rule (output = ceil(in / stride)).
  void set_same_padding();
  // Throws std::invalid_argument naming the first bad field.
  void validate() const;
  // A dense layer: batch x in_features -> batch x out_features (a 1x1 conv on 1x1 pixels).
  static BConv2DShape dense(std::int64_t batch, std::int64_t in_features,
                            std::int64_t out_features);
};

enum class OutputKind { kInt32, kFloat, kBits };

// y = clamp(clamp(d, acc_min, acc_max) * multiplier[o] + bias[o], clamp_min, clamp_max)
// where d is the integer dot product (the inner clamp is e.g. a ReLU before batch-norm,
// as in QuickNet); kFloat stores y, kBits stores sign(y) as a packed bit, kInt32 stores d
// (unclamped).
// Empty multiplier/bias mean 1 and 0. See csrc/kernels/output_transform.h for the
// derivation of the bit thresholds.
struct OutputTransform {
  OutputKind kind = OutputKind::kFloat;
  std::vector<float> multiplier;
  std::vector<float> bias;
  float clamp_min = -std::numeric_limits<float>::infinity();
  float clamp_max = std::numeric_limits<float>::infinity();
  std::int32_t acc_min = std::numeric_limits<std::int32_t>::min();
  std::int32_t acc_max = std::numeric_limits<std::int32_t>::max();
};

// A prepared binary conv2d. Weights: (out_channels, kernel_h, kernel_w,
// words_for(in_channels / groups)) packed words (OHWI). Input: (batch, in_h, in_w,
// words_for(in_channels)). Output: (batch, out_h, out_w, out_channels) float or int32,
// or (batch, out_h, out_w, words_for(out_channels)) words for kBits.
class BConv2D {
 public:
  BConv2D(const BConv2DShape& shape, const word_t* weights, const OutputTransform& transform);
  ~BConv2D();
  BConv2D(BConv2D&&) noexcept;
  BConv2D& operator=(BConv2D&&) noexcept;

  const BConv2DShape& shape() const;
  OutputKind output_kind() const;
  std::int64_t output_elements() const;  // floats / int32s / words written by run()

  // pool == nullptr runs on the calling thread. `gemm_variant` (tests, benchmarks) picks a
  // non-default "bgemm" variant of the path by its manifest name.
  void run(const word_t* input, void* output, ThreadPool* pool = nullptr,
           KernelPath path = KernelPath::kAuto, const char* gemm_variant = nullptr) const;

  struct Impl;

 private:
  Impl* impl_;
};

// ---- max-pool on packed bits -----------------------------------------------------------

// max of +-1 values is -1 only if all are -1, i.e. the packed result is the bitwise AND
// of the window's words. Padded positions are ignored (as PyTorch pads with -inf).
struct BMaxPoolShape {
  std::int64_t batch = 1, in_h = 1, in_w = 1, channels = 1;
  std::int64_t kernel_h = 1, kernel_w = 1, stride_h = 1, stride_w = 1;
  std::int64_t pad_top = 0, pad_bottom = 0, pad_left = 0, pad_right = 0;
  std::int64_t out_h() const;
  std::int64_t out_w() const;
  void validate() const;
};
void bmaxpool2d(const BMaxPoolShape& shape, const word_t* input, word_t* output,
                KernelPath path = KernelPath::kAuto);

}  // namespace bnnkit
