// Elementwise, per-channel and data-movement ops on f32 tensors (docs/format.md section 8):
// relu, relu6, hard_sigmoid, sigmoid, hard_tanh, batch_norm, prelu, rprelu, dprelu,
// fake_quant, dynamic_fake_quant, add, mul (numpy broadcasting), concat, reshape, flatten,
// softmax.
// Ops are defined on logical (PyTorch-order) indices; the loops walk the output in its
// physical order (NHWC for 4-D) and address inputs through their logical strides.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "runtime/ops.h"

namespace bnnkit {
namespace rt {
namespace {

using format::Op;

// Physical axis order of a tensor: NHWC -> (0, 2, 3, 1), else identity.
std::vector<std::size_t> phys_order(const Tensor& t) {
  if (t.nhwc()) return {0, 2, 3, 1};
  std::vector<std::size_t> p(t.shape.size());
  for (std::size_t i = 0; i < p.size(); ++i) p[i] = i;
  return p;
}

// Calls f(offsets[0..k), inner_count, inner_strides[0..k)) for each innermost run of `dims`
// (logical dims, visited in `order`), where operand j has logical strides strides[j].
template <std::size_t K, typename F>
void walk(const std::vector<std::int64_t>& dims, const std::vector<std::size_t>& order,
          const std::vector<std::int64_t> (&strides)[K], F&& f) {
  const std::size_t r = dims.size();
  std::vector<std::int64_t> d(r), s[K];
  for (std::size_t j = 0; j < K; ++j) s[j].resize(r);
  for (std::size_t i = 0; i < r; ++i) {
    d[i] = dims[order[i]];
    for (std::size_t j = 0; j < K; ++j) s[j][i] = strides[j][order[i]];
  }
  std::int64_t outer = 1;
  for (std::size_t i = 0; i + 1 < r; ++i) outer *= d[i];
  std::vector<std::int64_t> idx(r, 0);
  std::int64_t off[K] = {}, inner_stride[K];
  for (std::size_t j = 0; j < K; ++j) inner_stride[j] = s[j][r - 1];
  for (std::int64_t o = 0; o < outer; ++o) {
    f(off, d[r - 1], inner_stride);
    for (std::size_t i = r - 1; i-- > 0;) {
      for (std::size_t j = 0; j < K; ++j) off[j] += s[j][i];
      if (++idx[i] < d[i]) break;
      for (std::size_t j = 0; j < K; ++j) off[j] -= s[j][i] * d[i];
      idx[i] = 0;
    }
  }
}

class Unary : public OpImpl {
 public:
  explicit Unary(const OpArgs& a) : x_(a.in[0]), y_(a.out), op_(a.node.op) {
    if (op_ == Op::kHardTanh) lo_ = static_cast<float>(a.attrs.f("min")), hi_ = static_cast<float>(a.attrs.f("max"));
  }
  void run(const RunContext& ctx) override {
    parallel(ctx, (x_->numel + 4095) / 4096, [&](std::int64_t b, std::int64_t e) {
      const std::int64_t i0 = b * 4096, i1 = std::min(x_->numel, e * 4096);
      apply(x_->f() + i0, y_->f() + i0, i1 - i0);
    }, x_->numel);
  }

 private:
  void apply(const float* x, float* y, std::int64_t n) const {
    switch (op_) {
      case Op::kRelu: for (std::int64_t i = 0; i < n; ++i) y[i] = x[i] > 0.0f ? x[i] : 0.0f; break;
      case Op::kRelu6: for (std::int64_t i = 0; i < n; ++i) y[i] = std::min(std::max(x[i], 0.0f), 6.0f); break;
      case Op::kHardSigmoid:
        for (std::int64_t i = 0; i < n; ++i) y[i] = std::min(std::max(x[i] + 3.0f, 0.0f), 6.0f) / 6.0f;
        break;
      case Op::kSigmoid: for (std::int64_t i = 0; i < n; ++i) y[i] = 1.0f / (1.0f + std::exp(-x[i])); break;
      default: for (std::int64_t i = 0; i < n; ++i) y[i] = std::min(std::max(x[i], lo_), hi_); break;
    }
  }
  const Tensor* x_;
  const Tensor* y_;
  Op op_;
  float lo_ = -1.0f, hi_ = 1.0f;
};

// Per-channel ops; channel of physical element i = (i / channel_stride) % C.
//   batch_norm: y = x*scale + shift, rounded once (as an FMA, like PyTorch's CPU batch norm)
//   prelu: y = x >= 0 ? x : slope*x
//   rprelu:     t = x - gamma; y = (t >= 0 ? t : beta*t) + zeta
//   dprelu:     t = x - b_x; y = (t >= 0 ? pos : neg)*t - b_y
//   fake_quant: y = (clamp(round_half_even(x/s) + zp, qmin, qmax) - zp) * s
class PerChannel : public OpImpl {
 public:
  explicit PerChannel(const OpArgs& a) : x_(a.in[0]), y_(a.out), op_(a.node.op) {
    c_ = x_->shape.size() >= 2 ? x_->shape[1] : 1;
    cs_ = x_->channel_stride();
    for (std::size_t i = 1; i < a.node.inputs.size(); ++i) v_.push_back(channel_vector(a, i, c_, 0.0f));
    if (op_ == Op::kFakeQuant) {
      if (v_.empty()) v_.push_back(std::vector<float>(static_cast<std::size_t>(c_), static_cast<float>(a.attrs.f("scale"))));
      qmin_ = static_cast<float>(a.attrs.i("qmin"));
      qmax_ = static_cast<float>(a.attrs.i("qmax"));
      zp_ = static_cast<float>(a.attrs.i("zero_point"));
    }
  }
  void run(const RunContext& ctx) override {
    const float* v0 = v_[0].data();
    const float* v1 = v_.size() > 1 ? v_[1].data() : nullptr;
    const float* v2 = v_.size() > 2 ? v_[2].data() : nullptr;
    const float* v3 = v_.size() > 3 ? v_[3].data() : nullptr;
    switch (op_) {
      case Op::kBatchNorm:  // float64: the product is exact, so the sum rounds once to float (an FMA)
        return each(ctx, [=](float x, std::size_t c) { return static_cast<float>(double{x} * v0[c] + v1[c]); });
      // The slope selects as max(t, 0) * pos + min(t, 0) * neg: the same value (one term is
      // a zero; NaN stays NaN), without a data-dependent branch, so the loops vectorize.
      case Op::kPRelu:
        return each(ctx, [=](float x, std::size_t c) { return std::max(x, 0.0f) + v0[c] * std::min(x, 0.0f); });
      case Op::kRPRelu:
        return each(ctx, [=](float x, std::size_t c) {
          const float t = x - v0[c];
          return (std::max(t, 0.0f) + v1[c] * std::min(t, 0.0f)) + v2[c];
        });
      case Op::kDPRelu:
        return each(ctx, [=](float x, std::size_t c) {
          const float t = x - v0[c];
          return (v1[c] * std::max(t, 0.0f) + v2[c] * std::min(t, 0.0f)) - v3[c];
        });
      default: {
        const float qmin = qmin_, qmax = qmax_, zp = zp_;
        return each(ctx, [=](float x, std::size_t c) {
          const float q = std::nearbyint(x / v0[c]);
          return (std::min(std::max(q + zp, qmin), qmax) - zp) * v0[c];
        });
      }
    }
  }

 private:
  // y = f(x, channel) over the tensor as blocks of C channels x cs_ elements: NHWC (cs_ = 1)
  // walks the channels of each pixel, row-major (N, C, L) the L elements of each channel.
  template <typename F>
  void each(const RunContext& ctx, F f) const {
    const std::int64_t block = c_ * cs_, blocks = x_->numel / block, cs = cs_, cn = c_;
    const float* xs = x_->f();
    float* ys = y_->f();
    parallel(ctx, blocks, [&](std::int64_t b, std::int64_t e) {
      for (std::int64_t n = b; n < e; ++n) {
        const float* x = xs + n * block;
        float* y = ys + n * block;
        if (cs == 1) {  // a separate loop, so that the compiler vectorizes (selects become blends)
          for (std::int64_t c = 0; c < cn; ++c) y[c] = f(x[c], static_cast<std::size_t>(c));
          continue;
        }
        for (std::int64_t c = 0; c < cn; ++c) {
          for (std::int64_t k = 0; k < cs; ++k) y[c * cs + k] = f(x[c * cs + k], static_cast<std::size_t>(c));
        }
      }
    }, x_->numel);
  }

  const Tensor* x_;
  const Tensor* y_;
  Op op_;
  std::int64_t c_, cs_;
  std::vector<std::vector<float>> v_;
  float qmin_ = 0, qmax_ = 0, zp_ = 0;
};

// dynamic_fake_quant: the range is taken from the input itself (the whole tensor, or each
// axis-0 slice with per_sample), as bnnkit's symmetric_quant / unsigned_quant without a
// bound compute it in float32 (src/bnnkit/quantizers/multibit.py):
//     M = max|x| (signed) or max(max x, 0) (unsigned), NaN if any x is NaN
//     s = M / qmax;  safe = s > 0 ? s : 1
//     y = clamp(round_half_even(x / safe), lo, qmax) * s,  lo = -qmax (signed) or 0;  y = x for NaN x
// The maximum does not depend on the order of the elements, so neither does the result.
class DynamicFakeQuant : public OpImpl {
 public:
  explicit DynamicFakeQuant(const OpArgs& a) : x_(a.in[0]), y_(a.out) {
    qmax_ = static_cast<float>(a.attrs.i("qmax"));
    signed_ = a.attrs.i("signed") == 1;
    groups_ = a.attrs.i("per_sample") == 1 ? x_->shape[0] : 1;
    size_ = x_->numel / groups_;
  }
  void run(const RunContext& ctx) override {
    const std::int64_t chunk = 4096, per = (size_ + chunk - 1) / chunk;
    partial_.assign(static_cast<std::size_t>(groups_ * per), 0.0f);
    parallel(ctx, groups_ * per, [&](std::int64_t b, std::int64_t e) {
      for (std::int64_t k = b; k < e; ++k) {
        const std::int64_t g = k / per, i0 = g * size_ + (k % per) * chunk, i1 = std::min((g + 1) * size_, i0 + chunk);
        partial_[static_cast<std::size_t>(k)] = range(x_->f() + i0, i1 - i0);
      }
    }, x_->numel);
    scale_.resize(static_cast<std::size_t>(groups_));
    for (std::int64_t g = 0; g < groups_; ++g) {
      float m = signed_ ? 0.0f : -std::numeric_limits<float>::infinity();
      for (std::int64_t k = g * per; k < (g + 1) * per; ++k) m = combine(m, partial_[static_cast<std::size_t>(k)]);
      if (!signed_ && m < 0.0f) m = 0.0f;  // clamp_min(0); NaN stays NaN
      scale_[static_cast<std::size_t>(g)] = m / qmax_;
    }
    parallel(ctx, (x_->numel + 4095) / 4096, [&](std::int64_t b, std::int64_t e) {
      for (std::int64_t i = b * 4096, end = std::min(x_->numel, e * 4096); i < end; ++i) {
        y_->f()[i] = quant(x_->f()[i], scale_[static_cast<std::size_t>(i / size_)]);
      }
    }, x_->numel);
  }

 private:
  static float combine(float m, float v) { return (m != m || v != v) ? std::numeric_limits<float>::quiet_NaN() : std::max(m, v); }
  float range(const float* x, std::int64_t n) const {
    float m = signed_ ? 0.0f : -std::numeric_limits<float>::infinity();
    for (std::int64_t i = 0; i < n; ++i) m = combine(m, signed_ ? std::fabs(x[i]) : x[i]);
    return m;
  }
  float quant(float x, float s) const {
    if (x != x) return x;
    const float safe = s > 0.0f ? s : 1.0f;
    const float q = std::nearbyint(x / safe);
    return std::min(std::max(q, signed_ ? -qmax_ : 0.0f), qmax_) * s;
  }
  const Tensor* x_;
  const Tensor* y_;
  float qmax_ = 1.0f;
  bool signed_ = true;
  std::int64_t groups_ = 1, size_ = 1;
  std::vector<float> partial_, scale_;
};

// add/mul: y = a (op) b with b broadcast (numpy rules) to a's shape.
class Binary : public OpImpl {
 public:
  explicit Binary(const OpArgs& a) : a_(a.in[0]), b_(a.in[1]), y_(a.out), mul_(a.node.op == Op::kMul) {}
  void run(const RunContext&) override {
    const std::size_t r = a_->shape.size();
    std::vector<std::int64_t> sb(r, 0);
    const std::vector<std::int64_t> bs = b_->strides();
    for (std::size_t i = 0; i < b_->shape.size(); ++i) {
      if (b_->shape[i] != 1) sb[r - b_->shape.size() + i] = bs[i];
    }
    const std::vector<std::int64_t> strides[3] = {y_->strides(), a_->strides(), sb};
    const float *pa = a_->f(), *pb = b_->f();
    float* py = y_->f();
    const bool mul = mul_;
    walk<3>(y_->shape, phys_order(*y_), strides, [&](const std::int64_t* off, std::int64_t n, const std::int64_t* st) {
      float* y = py + off[0];
      const float* x = pa + off[1];
      const float* z = pb + off[2];
      if (st[0] == 1 && st[1] == 1 && st[2] == 0) {
        const float zv = *z;
        for (std::int64_t i = 0; i < n; ++i) y[i] = mul ? x[i] * zv : x[i] + zv;
      } else if (st[0] == 1 && st[1] == 1 && st[2] == 1) {
        for (std::int64_t i = 0; i < n; ++i) y[i] = mul ? x[i] * z[i] : x[i] + z[i];
      } else {
        for (std::int64_t i = 0; i < n; ++i) {
          y[i * st[0]] = mul ? x[i * st[1]] * z[i * st[2]] : x[i * st[1]] + z[i * st[2]];
        }
      }
    });
  }

 private:
  const Tensor *a_, *b_, *y_;
  bool mul_;
};

class Concat : public OpImpl {
 public:
  explicit Concat(const OpArgs& a) : in_(a.in), y_(a.out) {
    const auto r = static_cast<std::int64_t>(y_->shape.size());
    axis_ = a.attrs.i("axis");
    if (axis_ < 0) axis_ += r;
  }
  void run(const RunContext&) override {
    const std::vector<std::int64_t> ys = y_->strides();
    std::int64_t start = 0;
    for (const Tensor* x : in_) {
      const std::vector<std::int64_t> strides[2] = {ys, x->strides()};
      float* base = y_->f() + start * ys[static_cast<std::size_t>(axis_)];
      const float* src = x->f();
      walk<2>(x->shape, phys_order(*y_), strides, [&](const std::int64_t* off, std::int64_t n, const std::int64_t* st) {
        for (std::int64_t i = 0; i < n; ++i) base[off[0] + i * st[0]] = src[off[1] + i * st[1]];
      });
      start += x->shape[static_cast<std::size_t>(axis_)];
    }
  }

 private:
  std::vector<Tensor*> in_;
  const Tensor* y_;
  std::int64_t axis_;
};

// reshape/flatten: the logical row-major order of elements is kept.
class Reshape : public OpImpl {
 public:
  explicit Reshape(const OpArgs& a) : x_(a.in[0]), y_(a.out) {}
  void run(const RunContext&) override {
    if (!x_->nhwc() && !y_->nhwc()) {
      std::memcpy(y_->data, x_->data, 4 * static_cast<std::size_t>(x_->numel));
      return;
    }
    tmp_.resize(static_cast<std::size_t>(x_->numel));
    to_logical(*x_, tmp_.data());
    from_logical(tmp_.data(), *y_);
  }

 private:
  const Tensor* x_;
  const Tensor* y_;
  std::vector<float> tmp_;
};

// softmax along a logical axis: y = exp(x - max) / sum exp(x - max).
class Softmax : public OpImpl {
 public:
  explicit Softmax(const OpArgs& a) : x_(a.in[0]), y_(a.out) {
    const auto r = static_cast<std::int64_t>(x_->shape.size());
    axis_ = a.attrs.i("axis");
    if (axis_ < 0) axis_ += r;
  }
  void run(const RunContext&) override {
    std::vector<std::int64_t> dims = x_->shape;
    const auto ax = static_cast<std::size_t>(axis_);
    const std::int64_t len = dims[ax], stride = x_->strides()[ax];
    dims[ax] = 1;
    const std::vector<std::int64_t> strides[1] = {x_->strides()};
    std::vector<std::size_t> order(dims.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    const float* x = x_->f();
    float* y = y_->f();
    walk<1>(dims, order, strides, [&](const std::int64_t* off, std::int64_t n, const std::int64_t* st) {
      for (std::int64_t i = 0; i < n; ++i) row(x + off[0] + i * st[0], y + off[0] + i * st[0], len, stride);
    });
  }

 private:
  static void row(const float* x, float* y, std::int64_t len, std::int64_t stride) {
    float m = x[0];
    for (std::int64_t i = 1; i < len; ++i) m = std::max(m, x[i * stride]);
    float sum = 0.0f;
    for (std::int64_t i = 0; i < len; ++i) sum += (y[i * stride] = std::exp(x[i * stride] - m));
    const float inv = 1.0f / sum;
    for (std::int64_t i = 0; i < len; ++i) y[i * stride] *= inv;
  }
  const Tensor* x_;
  const Tensor* y_;
  std::int64_t axis_;
};

}  // namespace

std::unique_ptr<OpImpl> make_elementwise_op(const OpArgs& a) {
  switch (a.node.op) {
    case Op::kRelu: case Op::kRelu6: case Op::kHardSigmoid: case Op::kSigmoid: case Op::kHardTanh:
      return std::unique_ptr<OpImpl>(new Unary(a));
    case Op::kBatchNorm: case Op::kPRelu: case Op::kRPRelu: case Op::kDPRelu: case Op::kFakeQuant:
      return std::unique_ptr<OpImpl>(new PerChannel(a));
    case Op::kAdd: case Op::kMul: return std::unique_ptr<OpImpl>(new Binary(a));
    case Op::kConcat: return std::unique_ptr<OpImpl>(new Concat(a));
    case Op::kReshape: case Op::kFlatten: return std::unique_ptr<OpImpl>(new Reshape(a));
    case Op::kSoftmax: return std::unique_ptr<OpImpl>(new Softmax(a));
    case Op::kDynamicFakeQuant: return std::unique_ptr<OpImpl>(new DynamicFakeQuant(a));
    default: return nullptr;
  }
}

}  // namespace rt
}  // namespace bnnkit
