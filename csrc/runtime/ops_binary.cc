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
// The kernel's output transform is exactly this, accumulator clamp included (the clamp
// folds into the per-channel bit thresholds; csrc/kernels/output_transform.h), so the whole
// op is one fused kernel call. Float outputs round m*a + b once (an FMA) on every kernel
// path, as PyTorch's batch norm does, so float results are the same on every path; that
// matters where a k-bit quantizer follows: one rounding step at a quantization boundary
// moves the result by a whole step (PokeBNN's 4-bit gates).
#include <algorithm>
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

// bconv2d / bdense: y = clamp(clamp(d, acc_min, acc_max) * m + b, out_min, out_max) (or its
// sign as a bit), all of it fused into the kernel's output transform (output_transform.h).
class BinaryConv : public OpImpl {
 public:
  explicit BinaryConv(const OpArgs& a) : x_(a.in[0]), y_(a.out) {
    const std::int64_t o = a.desc(1).shape[0];
    BConv2DShape s = a.node.op == Op::kBDense ? BConv2DShape::dense(a.desc(0).shape[0], a.desc(0).shape[1], o)
                                              : conv_shape(a);
    OutputTransform t;
    t.kind = a.out->dtype == DType::kBits ? OutputKind::kBits : OutputKind::kFloat;
    t.multiplier = channel_vector(a, 2, o, 1.0f);
    t.bias = channel_vector(a, 3, o, 0.0f);
    t.clamp_min = static_cast<float>(a.attrs.f("out_min"));
    t.clamp_max = static_cast<float>(a.attrs.f("out_max"));
    // int32 range and acc_min <= acc_max are checked by the loader (graph.cc)
    t.acc_min = static_cast<std::int32_t>(a.attrs.i("acc_min"));
    t.acc_max = static_cast<std::int32_t>(a.attrs.i("acc_max"));
    conv_.reset(new BConv2D(s, a.in[1]->w(), t));
  }

  std::string kernel() const override { return active_path(); }

  void run(const RunContext& ctx) override { conv_->run(x_->w(), y_->data, ctx.pool); }

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

  const Tensor* x_;
  const Tensor* y_;
  std::unique_ptr<BConv2D> conv_;
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
