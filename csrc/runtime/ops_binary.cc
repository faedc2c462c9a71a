// Binary ops: quantize (bit-pack), dequantize (unpack), bconv2d, bdense and bmaxpool2d,
// through the kernel API of bnnkit/kernels.h (bit conventions of bnnkit/bits.h).
//
// Fused output transform (docs/format.md section 8.1). For output channel o the kernel
// computes the integer dot product acc = K - 2*popcount(x XOR w) over in-bounds taps (plus
// the exact pad_value correction), then the file asks for
//     a = clamp(acc, acc_min, acc_max)                 (integer; e.g. a ReLU before BN)
//     y = clamp(m[o]*a + b[o], out_min, out_max)       (float32; BN folded into m, b)
// and stores y (f32 output) or the bit [m[o]*a + b[o], clamped, < 0] evaluated exactly
// (bits output; a*m is exact in double and a rounded double sum keeps the exact sign).
// When the accumulator clamp is the identity (the common case) the kernel's own transform
// is exactly this: y = clamp(d*multiplier + bias, clamp_min, clamp_max) in float, or that
// exact sign as a bit via per-channel integer thresholds (csrc/kernels/output_transform.h),
// so it is fused there. Otherwise the kernel writes int32 accumulators and the epilogue
// below applies the same rules.
//
// Float outputs round m*a + b once (std::fma), as the x86 kernels do (compiled with -mfma)
// and as PyTorch's batch norm does; the reference and portable kernels round twice, so on
// those paths float outputs take the int32 epilogue below too. Float results are then the
// same on every path, which matters where a k-bit quantizer follows: one rounding step at
// a quantization boundary moves the result by a whole step (PokeBNN's 4-bit gates).
#include <algorithm>
#include <cmath>
#include <limits>

#include "bnnkit/kernels.h"
#include "runtime/ops.h"

namespace bnnkit {
namespace rt {
namespace {

using format::DType;
using format::Op;

std::string active_path() { return kernel_path_name(active_kernel_path()); }

// Rows/channels of a bits tensor in channels-last storage and whether f32 data must be
// transposed: (d0, C, rest...) row-major f32 for rank 3, 5, 6.
struct PackGeom {
  std::int64_t outer = 1, c = 1, inner = 1;  // logical (outer, C, inner)
  bool transpose = false;
};

PackGeom pack_geom(const std::vector<std::int64_t>& s) {
  PackGeom g;
  if (s.size() == 1) {
    g.c = s[0];
    return g;
  }
  g.outer = s[0];
  g.c = s[1];
  for (std::size_t i = 2; i < s.size(); ++i) g.inner *= s[i];
  g.transpose = s.size() != 2 && s.size() != 4 && g.inner > 1;  // 4-D f32 is already NHWC
  return g;
}

class Quantize : public OpImpl {
 public:
  Quantize(const OpArgs& a, bool pack) : x_(a.in[0]), y_(a.out), pack_(pack), g_(pack_geom(a.desc(0).shape)) {}
  std::string kernel() const override { return active_path(); }
  void run(const RunContext&) override {
    const std::int64_t rows = g_.outer * g_.inner;
    if (pack_) {
      const float* src = x_->f();
      if (g_.transpose) src = transposed(x_->f(), g_.outer, g_.c, g_.inner);
      pack_rows(src, rows, g_.c, y_->w());
    } else if (!g_.transpose) {
      unpack_rows(x_->w(), rows, g_.c, y_->f());
    } else {
      tmp_.resize(static_cast<std::size_t>(rows * g_.c));
      unpack_rows(x_->w(), rows, g_.c, tmp_.data());
      for (std::int64_t n = 0; n < g_.outer; ++n)
        for (std::int64_t c = 0; c < g_.c; ++c)
          for (std::int64_t i = 0; i < g_.inner; ++i)
            y_->f()[(n * g_.c + c) * g_.inner + i] = tmp_[static_cast<std::size_t>((n * g_.inner + i) * g_.c + c)];
    }
  }

 private:
  const float* transposed(const float* x, std::int64_t outer, std::int64_t c, std::int64_t inner) {
    tmp_.resize(static_cast<std::size_t>(outer * c * inner));
    for (std::int64_t n = 0; n < outer; ++n)
      for (std::int64_t i = 0; i < inner; ++i)
        for (std::int64_t k = 0; k < c; ++k) tmp_[static_cast<std::size_t>((n * inner + i) * c + k)] = x[(n * c + k) * inner + i];
    return tmp_.data();
  }
  const Tensor* x_;
  const Tensor* y_;
  bool pack_;
  PackGeom g_;
  std::vector<float> tmp_;
};

class BinaryConv : public OpImpl {
 public:
  explicit BinaryConv(const OpArgs& a) : x_(a.in[0]), y_(a.out) {
    const std::int64_t o = a.desc(1).shape[0];
    BConv2DShape s = a.node.op == Op::kBDense ? BConv2DShape::dense(a.desc(0).shape[0], a.desc(0).shape[1], o)
                                              : conv_shape(a);
    m_ = channel_vector(a, 2, o, 1.0f);
    b_ = channel_vector(a, 3, o, 0.0f);
    acc_min_ = a.attrs.i("acc_min");
    acc_max_ = a.attrs.i("acc_max");
    out_min_ = static_cast<float>(a.attrs.f("out_min"));
    out_max_ = static_cast<float>(a.attrs.f("out_max"));
    bits_out_ = a.out->dtype == DType::kBits;
    const KernelPath path = active_kernel_path();
    const bool rounds_twice = path == KernelPath::kReference || path == KernelPath::kPortable;
    fused_ = acc_min_ <= std::numeric_limits<std::int32_t>::min() && acc_max_ >= std::numeric_limits<std::int32_t>::max() &&
             (bits_out_ || !rounds_twice);
    OutputTransform t;
    if (fused_) {
      t.kind = bits_out_ ? OutputKind::kBits : OutputKind::kFloat;
      t.multiplier = m_;
      t.bias = b_;
      t.clamp_min = out_min_;
      t.clamp_max = out_max_;
    } else {
      t.kind = OutputKind::kInt32;
    }
    conv_.reset(new BConv2D(s, a.in[1]->w(), t));
    o_ = o;
    pixels_ = a.out->numel / o;
  }

  std::string kernel() const override { return active_path() + (fused_ ? "" : "+int32_epilogue"); }

  void run(const RunContext& ctx) override {
    if (fused_) {
      conv_->run(x_->w(), y_->data, ctx.pool);
      return;
    }
    acc_.resize(static_cast<std::size_t>(pixels_ * o_));
    conv_->run(x_->w(), acc_.data(), ctx.pool);
    epilogue();
  }

 private:
  static BConv2DShape conv_shape(const OpArgs& a) {
    const auto& x = a.desc(0).shape;
    const auto& w = a.desc(1).shape;
    const format::Window win = format::make_window(a.attrs, false, x[2], x[3], w[2], w[3]);
    BConv2DShape s;
    s.batch = x[0], s.in_h = x[2], s.in_w = x[3], s.in_channels = x[1];
    s.out_channels = w[0], s.kernel_h = w[2], s.kernel_w = w[3];
    s.stride_h = win.sh, s.stride_w = win.sw, s.dilation_h = win.dh, s.dilation_w = win.dw;
    s.pad_top = win.pt, s.pad_left = win.pl, s.pad_bottom = win.pb, s.pad_right = win.pr;
    s.groups = a.attrs.i("groups");
    s.pad_value = static_cast<int>(a.attrs.i("pad_value"));
    return s;
  }

  void epilogue() {
    const std::int64_t words = words_for(o_);
    for (std::int64_t p = 0; p < pixels_; ++p) {
      const std::int32_t* acc = acc_.data() + p * o_;
      if (bits_out_) std::fill(y_->w() + p * words, y_->w() + (p + 1) * words, word_t{0});
      for (std::int64_t o = 0; o < o_; ++o) {
        const std::int64_t a = std::min<std::int64_t>(std::max<std::int64_t>(acc[o], acc_min_), acc_max_);
        if (!bits_out_) {
          y_->f()[p * o_ + o] = std::min(std::max(std::fma(static_cast<float>(a), m_[o], b_[o]), out_min_), out_max_);
          continue;
        }
        // Exact sign: a*m is exact in double and the rounded sum keeps the exact sum's sign.
        const double y = std::min(std::max(static_cast<double>(a) * m_[o] + b_[o], double{out_min_}), double{out_max_});
        if (y < 0.0) y_->w()[p * words + o / kBitsPerWord] |= word_t{1} << (o % kBitsPerWord);
      }
    }
  }

  const Tensor* x_;
  const Tensor* y_;
  std::unique_ptr<BConv2D> conv_;
  std::vector<float> m_, b_;
  std::vector<std::int32_t> acc_;
  std::int64_t acc_min_, acc_max_, o_, pixels_;
  float out_min_, out_max_;
  bool bits_out_, fused_;
};

class BMaxPool : public OpImpl {
 public:
  explicit BMaxPool(const OpArgs& a) : x_(a.in[0]), y_(a.out) {
    const auto& x = a.desc(0).shape;
    const auto& k = a.attrs.ints("kernel");
    const format::Window win = format::make_window(a.attrs, true, x[2], x[3], k[0], k[1]);
    s_.batch = x[0], s_.channels = x[1], s_.in_h = x[2], s_.in_w = x[3];
    s_.kernel_h = win.kh, s_.kernel_w = win.kw, s_.stride_h = win.sh, s_.stride_w = win.sw;
    s_.pad_top = win.pt, s_.pad_left = win.pl, s_.pad_bottom = win.pb, s_.pad_right = win.pr;
    s_.validate();
  }
  std::string kernel() const override { return active_path(); }
  void run(const RunContext&) override { bmaxpool2d(s_, x_->w(), y_->w()); }

 private:
  const Tensor* x_;
  const Tensor* y_;
  BMaxPoolShape s_;
};

}  // namespace

std::unique_ptr<OpImpl> make_binary_op(const OpArgs& a) {
  switch (a.node.op) {
    case Op::kQuantize: return std::unique_ptr<OpImpl>(new Quantize(a, true));
    case Op::kDequantize: return std::unique_ptr<OpImpl>(new Quantize(a, false));
    case Op::kBConv2D: case Op::kBDense: return std::unique_ptr<OpImpl>(new BinaryConv(a));
    case Op::kBMaxPool2D: return std::unique_ptr<OpImpl>(new BMaxPool(a));
    default: return nullptr;
  }
}

}  // namespace rt
}  // namespace bnnkit
