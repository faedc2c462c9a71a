// Layout helpers: logical (PyTorch order) <-> runtime layout (4-D f32 NHWC), reading
// constants (f16 widened exactly to f32), and the parallel-for used by the ops.
#include <cstring>

#include "bnnkit/thread_pool.h"
#include "runtime/ops.h"

namespace bnnkit {
namespace rt {

std::vector<std::int64_t> Tensor::strides() const {
  const std::size_t r = shape.size();
  std::vector<std::int64_t> s(r, 1);
  if (nhwc()) {  // logical (N, C, H, W) held as (N, H, W, C)
    const std::int64_t c = shape[1], h = shape[2], w = shape[3];
    return {h * w * c, 1, w * c, c};
  }
  for (std::size_t i = r; i-- > 1;) s[i - 1] = s[i] * shape[i];
  return s;
}

std::int64_t Tensor::channel_stride() const {
  if (shape.size() < 2) return 1;
  return strides()[1];
}

namespace {

float half_to_float(std::uint16_t h) {
  const std::uint32_t sign = (h >> 15) & 1u, exp = (h >> 10) & 0x1Fu, mant = h & 0x3FFu;
  std::uint32_t bits;
  if (exp == 0 && mant == 0) {
    bits = sign << 31;
  } else if (exp == 0) {  // subnormal: normalize
    int e = -1;
    std::uint32_t m = mant;
    do { m <<= 1; ++e; } while (!(m & 0x400u));
    bits = (sign << 31) | (static_cast<std::uint32_t>(127 - 15 - e) << 23) | ((m & 0x3FFu) << 13);
  } else if (exp == 31) {
    bits = (sign << 31) | 0x7F800000u | (mant << 13);
  } else {
    bits = (sign << 31) | ((exp + 112) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// Visits every logical index of `shape` in row-major order, keeping two offsets.
template <typename F>
void for_each2(const std::vector<std::int64_t>& shape, const std::vector<std::int64_t>& sa,
               const std::vector<std::int64_t>& sb, F&& f) {
  const std::size_t r = shape.size();
  std::vector<std::int64_t> idx(r, 0);
  std::int64_t total = 1;
  for (auto d : shape) total *= d;
  std::int64_t oa = 0, ob = 0;
  for (std::int64_t n = 0; n < total; ++n) {
    f(oa, ob);
    for (std::size_t i = r; i-- > 0;) {
      oa += sa[i];
      ob += sb[i];
      if (++idx[i] < shape[i]) break;
      oa -= sa[i] * shape[i];
      ob -= sb[i] * shape[i];
      idx[i] = 0;
    }
  }
}

std::vector<std::int64_t> row_major(const std::vector<std::int64_t>& shape) {
  std::vector<std::int64_t> s(shape.size(), 1);
  for (std::size_t i = shape.size(); i-- > 1;) s[i - 1] = s[i] * shape[i];
  return s;
}

}  // namespace

std::vector<float> constant_values(const format::TensorDesc& t) {
  const auto n = static_cast<std::size_t>(t.numel());
  std::vector<float> out(n);
  if (t.dtype == format::DType::kF32) {
    std::memcpy(out.data(), t.data, 4 * n);
  } else if (t.dtype == format::DType::kF16) {
    for (std::size_t i = 0; i < n; ++i) {
      std::uint16_t h;
      std::memcpy(&h, t.data + 2 * i, 2);
      out[i] = half_to_float(h);
    }
  } else {
    throw std::invalid_argument("tensor '" + t.name + "' is not an f32/f16 constant");
  }
  return out;
}

std::vector<float> weight_values(const OpArgs& a) {
  const format::TensorDesc& w = a.desc(1);
  if (w.dtype != format::DType::kI8) return constant_values(w);
  const std::vector<float> scale = constant_values(a.desc(2));
  const auto n = static_cast<std::size_t>(w.numel()), per = n / scale.size();
  std::vector<float> out(n);
  for (std::size_t i = 0; i < n; ++i) {
    out[i] = static_cast<float>(static_cast<std::int8_t>(w.data[i])) * scale[i / per];
  }
  return out;
}

std::size_t bias_input(const OpArgs& a) { return a.desc(1).dtype == format::DType::kI8 ? 3 : 2; }

std::vector<float> channel_vector(const OpArgs& a, std::size_t i, std::int64_t count, float fallback) {
  if (i >= a.node.inputs.size()) return std::vector<float>(static_cast<std::size_t>(count), fallback);
  std::vector<float> v = constant_values(a.desc(i));
  if (v.size() == 1 && count > 1) v.assign(static_cast<std::size_t>(count), v[0]);
  return v;
}

void to_logical(const Tensor& t, float* dst) {
  if (!t.nhwc()) {
    std::memcpy(dst, t.data, 4 * static_cast<std::size_t>(t.numel));
    return;
  }
  const float* src = t.f();
  for_each2(t.shape, t.strides(), row_major(t.shape), [&](std::int64_t a, std::int64_t b) { dst[b] = src[a]; });
}

void from_logical(const float* src, const Tensor& t) {
  if (!t.nhwc()) {
    std::memcpy(t.data, src, 4 * static_cast<std::size_t>(t.numel));
    return;
  }
  float* dst = t.f();
  for_each2(t.shape, t.strides(), row_major(t.shape), [&](std::int64_t a, std::int64_t b) { dst[a] = src[b]; });
}

void parallel(const RunContext& ctx, std::int64_t n, const std::function<void(std::int64_t, std::int64_t)>& body,
              std::int64_t work) {
  if (n <= 0) return;
  if (!ctx.pool || ctx.pool->num_threads() == 1 || n == 1 || (work >= 0 && work < kMinParallelWork)) {
    body(0, n);
    return;
  }
  ctx.pool->parallel_for(n, body);
}

}  // namespace rt
}  // namespace bnnkit
