// Float ops on NHWC activations: conv2d (im2col + GEMM; depthwise direct), dense (GEMM),
// max/avg pooling and global average pooling. Semantics: docs/format.md section 8.
#include <algorithm>
#include <cstring>
#include <limits>

#include "runtime/ops.h"

namespace bnnkit {
namespace rt {
namespace {

using format::Op;

// Copies n floats with fixed-size moves (a std::copy of the few channels of one tap would
// be a memmove call each time).
inline void copy_floats(float* dst, const float* src, std::int64_t n) {
  std::int64_t i = 0;
  for (; i + 4 <= n; i += 4) std::memcpy(dst + i, src + i, 4 * sizeof(float));
  for (; i < n; ++i) std::memcpy(dst + i, src + i, sizeof(float));
}

struct ConvGeom {
  std::int64_t n, h, w, c, o, g, cg, og, kh, kw;
  format::Window win;
};

ConvGeom conv_geom(const OpArgs& a) {
  const auto& x = a.desc(0).shape;
  const auto& wt = a.desc(1).shape;
  ConvGeom g{x[0], x[2], x[3], x[1], wt[0], a.attrs.i("groups"), wt[1], 0, wt[2], wt[3], {}};
  g.og = g.o / g.g;
  g.win = format::make_window(a.attrs, false, g.h, g.w, g.kh, g.kw);
  return g;
}

// conv2d: out[n, oh, ow, o] = b[o] + sum_{ky,kx,ci} x[n, ih, iw, grp*Cg + ci] * w[o, ci, ky, kx]
// with ih = oh*sh - pt + ky*dh, iw = ow*sw - pl + kx*dw (zero outside), grp = o / Og.
class Conv2D : public OpImpl {
 public:
  explicit Conv2D(const OpArgs& a) : x_(a.in[0]), y_(a.out), s_(conv_geom(a)) {
    const std::vector<float> w = weight_values(a);  // (O, Cg, KH, KW)
    bias_ = channel_vector(a, bias_input(a), s_.o, 0.0f);
    depthwise_ = s_.cg == 1 && s_.og == 1;
    const std::int64_t k = s_.kh * s_.kw * s_.cg;
    packed_.assign(static_cast<std::size_t>(s_.g * k * s_.og), 0.0f);
    // packed_[grp][(ky*KW + kx)*Cg + ci][oo] (depthwise: [(ky*KW + kx)][c])
    for (std::int64_t o = 0; o < s_.o; ++o) {
      const std::int64_t grp = o / s_.og, oo = o % s_.og;
      for (std::int64_t ci = 0; ci < s_.cg; ++ci) {
        for (std::int64_t t = 0; t < s_.kh * s_.kw; ++t) {
          const float v = w[static_cast<std::size_t>((o * s_.cg + ci) * s_.kh * s_.kw + t)];
          const std::int64_t dst = depthwise_ ? t * s_.o + o : (grp * k + t * s_.cg + ci) * s_.og + oo;
          packed_[static_cast<std::size_t>(dst)] = v;
        }
      }
    }
    pointwise_ = s_.kh == 1 && s_.kw == 1 && s_.g == 1 && s_.win.sh == 1 && s_.win.sw == 1 &&
                 s_.win.pt == 0 && s_.win.pl == 0 && s_.win.pb == 0 && s_.win.pr == 0;
  }

  std::string kernel() const override {
    return std::string(depthwise_ ? "depthwise_direct" : pointwise_ ? "gemm_1x1" : "im2col_gemm") + "/" + sgemm_name();
  }

  void run(const RunContext& ctx) override {
    const std::int64_t rows = s_.n * s_.win.out_h * s_.win.out_w;
    const std::int64_t chunks = (rows + kChunk - 1) / kChunk;
    const std::int64_t work = rows * s_.o * s_.kh * s_.kw * s_.cg;
    // A thread's consecutive chunks are merged into GEMM calls of up to block_rows() rows:
    // a BLAS call costs microseconds of set-up, which small calls pay thousands of times.
    parallel(ctx, chunks, [&](std::int64_t b, std::int64_t e) {
      std::vector<float> scratch;
      const std::int64_t end = std::min(rows, e * kChunk), step = depthwise_ ? kChunk : block_rows();
      for (std::int64_t r0 = b * kChunk; r0 < end; r0 += step) {
        const std::int64_t r1 = std::min(end, r0 + step);
        depthwise_ ? run_depthwise(r0, r1) : run_gemm(r0, r1, scratch);
      }
    }, work);
  }

 private:
  static constexpr std::int64_t kChunk = 48;  // output pixels per task (a multiple of the GEMM's 6 rows)

  // Rows per GEMM call: all of them for 1x1 convs (no scratch), else an im2col block of
  // about 256 KiB (kChunk at least, 1536 at most).
  std::int64_t block_rows() const {
    if (pointwise_) return std::int64_t(1) << 40;
    const std::int64_t k = s_.kh * s_.kw * s_.cg;
    return std::clamp<std::int64_t>((65536 / k) / kChunk * kChunk, kChunk, 1536);
  }

  // The input pixels under the kh*kw taps of output row r (tap t = ky*KW + kx), nullptr in
  // the padding; the row's coordinates are divided out once, not per tap.
  void taps(std::int64_t r, const float** out) const {
    const std::int64_t ow = r % s_.win.out_w, oh = (r / s_.win.out_w) % s_.win.out_h, n = r / (s_.win.out_w * s_.win.out_h);
    for (std::int64_t ky = 0; ky < s_.kh; ++ky) {
      const std::int64_t iy = oh * s_.win.sh - s_.win.pt + ky * s_.win.dh;
      for (std::int64_t kx = 0; kx < s_.kw; ++kx) {
        const std::int64_t ix = ow * s_.win.sw - s_.win.pl + kx * s_.win.dw;
        const bool inside = iy >= 0 && iy < s_.h && ix >= 0 && ix < s_.w;
        *out++ = inside ? x_->f() + ((n * s_.h + iy) * s_.w + ix) * s_.c : nullptr;
      }
    }
  }

  void run_depthwise(std::int64_t r0, std::int64_t r1) const {
    std::vector<const float*> in(static_cast<std::size_t>(s_.kh * s_.kw));
    for (std::int64_t r = r0; r < r1; ++r) {
      float* out = y_->f() + r * s_.o;
      std::copy(bias_.begin(), bias_.end(), out);
      taps(r, in.data());
      for (std::int64_t t = 0; t < s_.kh * s_.kw; ++t) {
        if (!in[t]) continue;
        const float* x = in[t];
        const float* w = packed_.data() + t * s_.o;
        for (std::int64_t c = 0; c < s_.c; ++c) out[c] += x[c] * w[c];
      }
    }
  }

  // Rows [r0, r1) of group grp's im2col matrix (k = KH*KW*Cg columns, zero in the padding).
  // Coordinates are stepped per row; with groups == 1 and dilation_w == 1 a kernel row
  // inside the image is one copy of KW*C contiguous floats.
  void im2col(std::int64_t r0, std::int64_t r1, std::int64_t grp, float* a) const {
    const std::int64_t k = s_.kh * s_.kw * s_.cg, run = s_.kw * s_.cg;
    std::int64_t ow = r0 % s_.win.out_w, oh = (r0 / s_.win.out_w) % s_.win.out_h, n = r0 / (s_.win.out_w * s_.win.out_h);
    for (std::int64_t r = r0; r < r1; ++r, a += k) {
      const std::int64_t ix0 = ow * s_.win.sw - s_.win.pl;
      const bool whole = s_.g == 1 && s_.win.dw == 1 && ix0 >= 0 && ix0 + s_.kw <= s_.w;
      for (std::int64_t ky = 0; ky < s_.kh; ++ky) {
        float* dst = a + ky * run;
        const std::int64_t iy = oh * s_.win.sh - s_.win.pt + ky * s_.win.dh;
        if (iy < 0 || iy >= s_.h) {
          std::memset(dst, 0, sizeof(float) * static_cast<std::size_t>(run));
          continue;
        }
        const float* row = x_->f() + (n * s_.h + iy) * s_.w * s_.c;
        if (whole) {
          copy_floats(dst, row + ix0 * s_.c, run);
          continue;
        }
        for (std::int64_t kx = 0; kx < s_.kw; ++kx, dst += s_.cg) {
          const std::int64_t ix = ix0 + kx * s_.win.dw;
          if (ix < 0 || ix >= s_.w) std::memset(dst, 0, sizeof(float) * static_cast<std::size_t>(s_.cg));
          else copy_floats(dst, row + ix * s_.c + grp * s_.cg, s_.cg);
        }
      }
      if (++ow == s_.win.out_w) {
        ow = 0;
        if (++oh == s_.win.out_h) {
          oh = 0;
          ++n;
        }
      }
    }
  }

  void run_gemm(std::int64_t r0, std::int64_t r1, std::vector<float>& a) const {
    const std::int64_t rows = r1 - r0, k = s_.kh * s_.kw * s_.cg;
    float* out = y_->f() + r0 * s_.o;
    for (std::int64_t r = 0; r < rows; ++r) copy_floats(out + r * s_.o, bias_.data(), s_.o);
    if (pointwise_) {
      sgemm_acc(rows, s_.o, k, x_->f() + r0 * s_.c, s_.c, packed_.data(), s_.o, out, s_.o);
      return;
    }
    a.resize(static_cast<std::size_t>(rows * k));
    for (std::int64_t grp = 0; grp < s_.g; ++grp) {
      im2col(r0, r1, grp, a.data());
      sgemm_acc(rows, s_.og, k, a.data(), k, packed_.data() + grp * k * s_.og, s_.og, out + grp * s_.og, s_.o);
    }
  }

  const Tensor* x_;
  const Tensor* y_;
  ConvGeom s_;
  std::vector<float> packed_, bias_;
  bool depthwise_ = false, pointwise_ = false;
};

// dense: y[n, o] = b[o] + sum_k x[n, k] * w[o, k]  (PyTorch linear)
class Dense : public OpImpl {
 public:
  explicit Dense(const OpArgs& a) : x_(a.in[0]), y_(a.out) {
    k_ = a.desc(1).shape[1];
    o_ = a.desc(1).shape[0];
    n_ = a.desc(0).shape[0];
    const std::vector<float> w = weight_values(a);
    wt_.resize(w.size());
    for (std::int64_t o = 0; o < o_; ++o) {
      for (std::int64_t k = 0; k < k_; ++k) wt_[static_cast<std::size_t>(k * o_ + o)] = w[static_cast<std::size_t>(o * k_ + k)];
    }
    bias_ = channel_vector(a, bias_input(a), o_, 0.0f);
  }
  std::string kernel() const override { return std::string("gemm/") + sgemm_name(); }
  void run(const RunContext& ctx) override {
    const std::int64_t blocks = (o_ + 63) / 64;
    parallel(ctx, blocks, [&](std::int64_t b, std::int64_t e) {
      const std::int64_t j0 = b * 64, j1 = std::min(o_, e * 64);
      for (std::int64_t n = 0; n < n_; ++n) std::copy(bias_.begin() + j0, bias_.begin() + j1, y_->f() + n * o_ + j0);
      sgemm_acc(n_, j1 - j0, k_, x_->f(), k_, wt_.data() + j0, o_, y_->f() + j0, o_);
    }, n_ * k_ * o_);
  }

 private:
  const Tensor* x_;
  const Tensor* y_;
  std::int64_t n_, k_, o_;
  std::vector<float> wt_, bias_;
};

// max/avg pooling over in-bounds taps; avg divides the sum (taps in row-major order) by KH*KW
// (count_include_pad) or the tap count, as PyTorch's avg_pool2d does.
class Pool : public OpImpl {
 public:
  Pool(const OpArgs& a, bool is_max) : x_(a.in[0]), y_(a.out), max_(is_max) {
    const auto& s = a.desc(0).shape;
    n_ = s[0], c_ = s[1], h_ = s[2], w_ = s[3];
    const auto& k = a.attrs.ints("kernel");
    win_ = format::make_window(a.attrs, true, h_, w_, k[0], k[1]);
    include_pad_ = !is_max && a.attrs.i("count_include_pad") == 1;
  }
  void run(const RunContext& ctx) override {
    const std::int64_t rows = n_ * win_.out_h * win_.out_w;
    parallel(ctx, rows, [&](std::int64_t b, std::int64_t e) {
      for (std::int64_t r = b; r < e; ++r) pixel(r);
    }, rows * c_ * win_.kh * win_.kw);
  }

 private:
  void pixel(std::int64_t r) const {
    const std::int64_t ow = r % win_.out_w, oh = (r / win_.out_w) % win_.out_h, n = r / (win_.out_w * win_.out_h);
    float* out = y_->f() + r * c_;
    std::fill(out, out + c_, max_ ? -std::numeric_limits<float>::infinity() : 0.0f);
    std::int64_t taps = 0;
    for (std::int64_t ky = 0; ky < win_.kh; ++ky) {
      const std::int64_t iy = oh * win_.sh - win_.pt + ky;
      if (iy < 0 || iy >= h_) continue;
      for (std::int64_t kx = 0; kx < win_.kw; ++kx) {
        const std::int64_t ix = ow * win_.sw - win_.pl + kx;
        if (ix < 0 || ix >= w_) continue;
        const float* in = x_->f() + ((n * h_ + iy) * w_ + ix) * c_;
        ++taps;
        if (max_) {
          for (std::int64_t c = 0; c < c_; ++c) out[c] = std::max(out[c], in[c]);
        } else {
          for (std::int64_t c = 0; c < c_; ++c) out[c] += in[c];
        }
      }
    }
    if (max_) return;
    const float div = static_cast<float>(include_pad_ ? win_.kh * win_.kw : taps);
    for (std::int64_t c = 0; c < c_; ++c) out[c] /= div;
  }

  const Tensor* x_;
  const Tensor* y_;
  bool max_, include_pad_ = false;
  std::int64_t n_, c_, h_, w_;
  format::Window win_;
};

// global_avgpool: y[n, c] = mean over (h, w) of x[n, c, h, w]
class GlobalAvgPool : public OpImpl {
 public:
  explicit GlobalAvgPool(const OpArgs& a) : x_(a.in[0]), y_(a.out) {
    const auto& s = a.desc(0).shape;
    n_ = s[0], c_ = s[1], hw_ = s[2] * s[3];
  }
  void run(const RunContext& ctx) override {
    parallel(ctx, n_, [&](std::int64_t b, std::int64_t e) {
      for (std::int64_t n = b; n < e; ++n) {
        float* out = y_->f() + n * c_;
        std::fill(out, out + c_, 0.0f);
        for (std::int64_t p = 0; p < hw_; ++p) {
          const float* in = x_->f() + (n * hw_ + p) * c_;
          for (std::int64_t c = 0; c < c_; ++c) out[c] += in[c];
        }
        const float div = static_cast<float>(hw_);
        for (std::int64_t c = 0; c < c_; ++c) out[c] /= div;
      }
    }, n_ * hw_ * c_);
  }

 private:
  const Tensor* x_;
  const Tensor* y_;
  std::int64_t n_, c_, hw_;
};

}  // namespace

std::unique_ptr<OpImpl> make_float_op(const OpArgs& a) {
  switch (a.node.op) {
    case Op::kConv2D: return std::unique_ptr<OpImpl>(new Conv2D(a));
    case Op::kDense: return std::unique_ptr<OpImpl>(new Dense(a));
    case Op::kMaxPool2D: return std::unique_ptr<OpImpl>(new Pool(a, true));
    case Op::kAvgPool2D: return std::unique_ptr<OpImpl>(new Pool(a, false));
    case Op::kGlobalAvgPool: return std::unique_ptr<OpImpl>(new GlobalAvgPool(a));
    default: return nullptr;
  }
}

}  // namespace rt
}  // namespace bnnkit
