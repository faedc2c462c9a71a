// Data-movement ops on f32 or bits tensors and the logic ops on packed bits
// (docs/format.md section 8): bxnor, bor, band, pad2d, gather_channels, group_mean.
//
// Both dtypes are channels-last here: a 4-D f32 tensor is NHWC and a rank-2 one (N, C), so
// element (pixel p, channel c) is at p*C + c; a bits tensor is rows of words_for(C) words.
// The logic ops work word by word. On +-1 values with +1 = true and bit 1 = -1:
//     XNOR(a, b) = a*b     -> bit = a_bit XOR b_bit
//     OR(a, b)   = +1 unless both are -1   -> bit = a_bit AND b_bit
//     AND(a, b)  = +1 only if both are +1  -> bit = a_bit OR b_bit
// and the padding bits past C (0 in both inputs) stay 0 under all three.
#include <algorithm>
#include <cstring>

#include "runtime/ops.h"

namespace bnnkit {
namespace rt {
namespace {

using format::DType;
using format::Op;

// Channel count (the packed axis, format::channel_axis: axis 1, or axis 0 of a rank-1
// tensor) and pixel count (elements / C). Valid for every rank the format allows.
std::int64_t channels(const Tensor& t) { return t.shape[format::channel_axis(t.shape.size())]; }
std::int64_t pixels(const Tensor& t) { return t.numel / channels(t); }

class BitLogic : public OpImpl {
 public:
  explicit BitLogic(const OpArgs& a) : a_(a.in[0]), b_(a.in[1]), y_(a.out), op_(a.node.op) {
    words_ = pixels(*a_) * words_for(channels(*a_));
  }
  void run(const RunContext& ctx) override {
    parallel(ctx, (words_ + 4095) / 4096, [&](std::int64_t b, std::int64_t e) {
      const std::int64_t i0 = b * 4096, i1 = std::min(words_, e * 4096);
      const word_t *x = a_->w(), *z = b_->w();
      word_t* y = y_->w();
      switch (op_) {
        case Op::kBXnor: for (std::int64_t i = i0; i < i1; ++i) y[i] = x[i] ^ z[i]; break;
        case Op::kBOr: for (std::int64_t i = i0; i < i1; ++i) y[i] = x[i] & z[i]; break;
        default: for (std::int64_t i = i0; i < i1; ++i) y[i] = x[i] | z[i]; break;
      }
    }, words_);
  }

 private:
  const Tensor *a_, *b_, *y_;
  Op op_;
  std::int64_t words_ = 0;
};

// pad2d: constant (value) or replicate (nearest border pixel) padding of an NHWC tensor;
// bits rows are copied whole, a constant bits row is all 0 (+1) or bits 0..C-1 set (-1).
class Pad2D : public OpImpl {
 public:
  explicit Pad2D(const OpArgs& a) : x_(a.in[0]), y_(a.out) {
    const auto& p = a.attrs.ints("pad");
    top_ = p[0], left_ = p[1];
    replicate_ = a.attrs.i("mode") == 1;
    const auto& s = x_->shape;
    n_ = s[0], h_ = s[2], w_ = s[3];
    oh_ = y_->shape[2], ow_ = y_->shape[3];
    bits_ = x_->dtype == DType::kBits;
    row_ = bits_ ? words_for(s[1]) : s[1];
    const float v = static_cast<float>(a.attrs.f("value"));
    if (bits_) {
      fill_bits_.assign(static_cast<std::size_t>(row_), word_t{0});
      for (std::int64_t c = 0; v < 0.0f && c < s[1]; ++c) fill_bits_[c / kBitsPerWord] |= word_t{1} << (c % kBitsPerWord);
    } else {
      fill_f_.assign(static_cast<std::size_t>(row_), v);
    }
  }
  void run(const RunContext& ctx) override {
    const std::int64_t rows = n_ * oh_;
    parallel(ctx, rows, [&](std::int64_t b, std::int64_t e) {
      for (std::int64_t r = b; r < e; ++r) line(r / oh_, r % oh_);
    }, rows * ow_ * row_);
  }

 private:
  // Output row (n, oy): every pixel copies its source pixel or the fill.
  void line(std::int64_t n, std::int64_t oy) const {
    const std::size_t bytes = static_cast<std::size_t>(row_) * 4;  // word_t and float are 4 bytes
    const char* src = static_cast<const char*>(x_->data);
    char* dst = static_cast<char*>(y_->data) + static_cast<std::size_t>((n * oh_ + oy) * ow_) * bytes;
    const void* fill = bits_ ? static_cast<const void*>(fill_bits_.data()) : static_cast<const void*>(fill_f_.data());
    std::int64_t iy = oy - top_;
    const bool row_out = iy < 0 || iy >= h_;
    if (replicate_) iy = std::min(std::max<std::int64_t>(iy, 0), h_ - 1);
    for (std::int64_t ox = 0; ox < ow_; ++ox, dst += bytes) {
      std::int64_t ix = ox - left_;
      const bool out = row_out || ix < 0 || ix >= w_;
      if (out && !replicate_) {
        std::memcpy(dst, fill, bytes);
        continue;
      }
      ix = std::min(std::max<std::int64_t>(ix, 0), w_ - 1);
      std::memcpy(dst, src + static_cast<std::size_t>((n * h_ + iy) * w_ + ix) * bytes, bytes);
    }
  }

  const Tensor* x_;
  const Tensor* y_;
  std::int64_t top_ = 0, left_ = 0, n_ = 0, h_ = 0, w_ = 0, oh_ = 0, ow_ = 0, row_ = 0;
  bool replicate_ = false, bits_ = false;
  std::vector<word_t> fill_bits_;
  std::vector<float> fill_f_;
};

// gather_channels: output channel j = channel index[j] of the inputs concatenated along
// axis 1 (f32: index -1 gives 0). Per pixel: f32 copies values, bits moves single bits;
// each output channel's source (input, offset in the pixel's row) is resolved once.
class GatherChannels : public OpImpl {
 public:
  explicit GatherChannels(const OpArgs& a) : y_(a.out) {
    bits_ = y_->dtype == DType::kBits;
    std::vector<std::int64_t> first_in, first_c;  // concatenated channel -> (input, channel)
    for (std::size_t i = 0; i < a.in.size(); ++i) {
      const Tensor& x = *a.in[i];
      base_.push_back(bits_ ? static_cast<const void*>(x.w()) : static_cast<const void*>(x.f()));
      row_.push_back(bits_ ? words_for(channels(x)) : channels(x));
      for (std::int64_t c = 0; c < channels(x); ++c) first_in.push_back(static_cast<std::int64_t>(i)), first_c.push_back(c);
    }
    for (std::int64_t k : a.attrs.ints("index")) {
      sel_in_.push_back(k < 0 ? -1 : static_cast<int>(first_in[static_cast<std::size_t>(k)]));
      sel_c_.push_back(k < 0 ? 0 : first_c[static_cast<std::size_t>(k)]);
    }
    pixels_ = pixels(*y_);
    co_ = channels(*y_);
    for (std::int64_t j = 0; j < co_; ++j) {  // maximal runs of consecutive source channels
      const int i = sel_in_[static_cast<std::size_t>(j)];
      const std::int64_t c = sel_c_[static_cast<std::size_t>(j)];
      Run* last = runs_.empty() ? nullptr : &runs_.back();
      if (last && last->in == i && (i < 0 || last->c + last->len == c)) ++last->len;
      else runs_.push_back(Run{i, c, j, 1});
    }
  }
  void run(const RunContext& ctx) override {
    parallel(ctx, pixels_, [&](std::int64_t b, std::int64_t e) {
      std::vector<const float*> f(base_.size());
      std::vector<const word_t*> w(base_.size());
      for (std::int64_t p = b; p < e; ++p) {
        for (std::size_t i = 0; i < base_.size(); ++i) {
          f[i] = static_cast<const float*>(base_[i]) + p * row_[i];
          w[i] = static_cast<const word_t*>(base_[i]) + p * row_[i];
        }
        bits_ ? pixel_bits(p, w.data()) : pixel_f32(p, f.data());
      }
    }, pixels_ * co_);
  }

 private:
  // Output channels [out, out + len) = input `in`'s channels [c, c + len) (in = -1: zeros).
  struct Run {
    int in;
    std::int64_t c, out, len;
  };

  void pixel_f32(std::int64_t p, const float* const* in) const {
    float* out = y_->f() + p * co_;
    for (const Run& r : runs_) {
      if (r.in < 0) std::fill(out + r.out, out + r.out + r.len, 0.0f);
      else std::memcpy(out + r.out, in[r.in] + r.c, sizeof(float) * static_cast<std::size_t>(r.len));
    }
  }
  void pixel_bits(std::int64_t p, const word_t* const* in) const {
    const std::int64_t words = words_for(co_);
    word_t* out = y_->w() + p * words;
    for (std::int64_t k = 0; k < words; ++k) {
      word_t acc = 0;
      const std::int64_t j1 = std::min(co_, (k + 1) * kBitsPerWord);
      for (std::int64_t j = k * kBitsPerWord; j < j1; ++j) {
        const std::int64_t c = sel_c_[static_cast<std::size_t>(j)];
        const word_t bit = (in[sel_in_[static_cast<std::size_t>(j)]][c / kBitsPerWord] >> (c % kBitsPerWord)) & 1u;
        acc |= bit << (j % kBitsPerWord);
      }
      out[k] = acc;
    }
  }

  const Tensor* y_;
  bool bits_ = false;
  std::vector<const void*> base_;
  std::vector<std::int64_t> row_;  // floats or words per pixel of each input
  std::vector<int> sel_in_;
  std::vector<std::int64_t> sel_c_;
  std::vector<Run> runs_;
  std::int64_t pixels_ = 0, co_ = 0;
};

// group_mean: y[p, c] = (x[p, c*g] + x[p, c*g + 1] + ... + x[p, c*g + g-1]) / g, summed in
// that order in float32.
class GroupMean : public OpImpl {
 public:
  explicit GroupMean(const OpArgs& a) : x_(a.in[0]), y_(a.out) {
    g_ = a.attrs.i("group");
    pixels_ = pixels(*y_);
    co_ = channels(*y_);
  }
  void run(const RunContext& ctx) override {
    const float div = static_cast<float>(g_);
    parallel(ctx, pixels_, [&](std::int64_t b, std::int64_t e) {
      for (std::int64_t p = b; p < e; ++p) {
        const float* in = x_->f() + p * co_ * g_;
        float* out = y_->f() + p * co_;
        for (std::int64_t c = 0; c < co_; ++c) {
          float s = in[c * g_];
          for (std::int64_t j = 1; j < g_; ++j) s += in[c * g_ + j];
          out[c] = s / div;
        }
      }
    }, pixels_ * co_ * g_);
  }

 private:
  const Tensor* x_;
  const Tensor* y_;
  std::int64_t g_ = 1, pixels_ = 0, co_ = 0;
};

}  // namespace

std::unique_ptr<OpImpl> make_channel_op(const OpArgs& a) {
  switch (a.node.op) {
    case Op::kBXnor: case Op::kBOr: case Op::kBAnd: return std::unique_ptr<OpImpl>(new BitLogic(a));
    case Op::kPad2D: return std::unique_ptr<OpImpl>(new Pad2D(a));
    case Op::kGatherChannels: return std::unique_ptr<OpImpl>(new GatherChannels(a));
    case Op::kGroupMean: return std::unique_ptr<OpImpl>(new GroupMean(a));
    default: return nullptr;
  }
}

}  // namespace rt
}  // namespace bnnkit
