// .bnn loader, part 2: the op table and the graph check (docs/format.md section 7 items
// 6-7, section 8). For every node in order: the op's input count, attribute names and
// types, attribute values, input dtypes/ranks/shapes and constness (the op's contract),
// then the inferred output dtype and shape must equal the declared ones. Dataflow: each
// input exists before use, each activation is produced exactly once.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "bnnkit/format.h"
#include "runtime/op_spec.h"

namespace bnnkit {
namespace format {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr std::int64_t kI32Min = std::numeric_limits<std::int32_t>::min();
constexpr std::int64_t kI32Max = std::numeric_limits<std::int32_t>::max();

AttrSpec I(const char* n, std::int64_t d) { return {n, ValueType::kInt, false, d, 0.0, {}}; }
AttrSpec Ireq(const char* n) { return {n, ValueType::kInt, true, 0, 0.0, {}}; }
AttrSpec F(const char* n, double d) { return {n, ValueType::kFloat, false, 0, d, {}}; }
AttrSpec L(const char* n, std::vector<std::int64_t> d) { return {n, ValueType::kInts, false, 0, 0.0, std::move(d)}; }
AttrSpec Lreq(const char* n) { return {n, ValueType::kInts, true, 0, 0.0, {}}; }

std::vector<AttrSpec> conv_attrs(bool binary) {
  std::vector<AttrSpec> a = {L("stride", {1, 1}), L("pad", {0, 0, 0, 0}), L("dilation", {1, 1}), I("groups", 1)};
  if (binary) {
    a.push_back(I("pad_value", 1));
    for (auto& t : std::vector<AttrSpec>{I("acc_min", kI32Min), I("acc_max", kI32Max), F("out_min", -kInf), F("out_max", kInf)}) a.push_back(t);
  }
  return a;
}

const std::vector<OpSpec>& op_table() {
  static const std::vector<OpSpec> table = {
      {Op::kQuantize, "quantize", 1, 1, {}},
      {Op::kDequantize, "dequantize", 1, 1, {}},
      {Op::kBConv2D, "bconv2d", 2, 4, conv_attrs(true)},
      {Op::kBDense, "bdense", 2, 4, {I("acc_min", kI32Min), I("acc_max", kI32Max), F("out_min", -kInf), F("out_max", kInf)}},
      {Op::kBMaxPool2D, "bmaxpool2d", 1, 1, {Lreq("kernel"), L("stride", {}), L("pad", {0, 0, 0, 0})}},
      {Op::kBXnor, "bxnor", 2, 2, {}},
      {Op::kBOr, "bor", 2, 2, {}},
      {Op::kBAnd, "band", 2, 2, {}},
      {Op::kConv2D, "conv2d", 2, 4, conv_attrs(false)},
      {Op::kDense, "dense", 2, 4, {}},
      {Op::kBatchNorm, "batch_norm", 3, 3, {}},
      {Op::kAdd, "add", 2, 2, {}},
      {Op::kMul, "mul", 2, 2, {}},
      {Op::kConcat, "concat", 2, 64, {I("axis", 1)}},
      {Op::kMaxPool2D, "maxpool2d", 1, 1, {Lreq("kernel"), L("stride", {}), L("pad", {0, 0, 0, 0})}},
      {Op::kAvgPool2D, "avgpool2d", 1, 1, {Lreq("kernel"), L("stride", {}), L("pad", {0, 0, 0, 0}), I("count_include_pad", 1)}},
      {Op::kGlobalAvgPool, "global_avgpool", 1, 1, {I("keepdims", 1)}},
      {Op::kRelu, "relu", 1, 1, {}},
      {Op::kRelu6, "relu6", 1, 1, {}},
      {Op::kPRelu, "prelu", 2, 2, {}},
      {Op::kRPRelu, "rprelu", 4, 4, {}},
      {Op::kDPRelu, "dprelu", 5, 5, {}},
      {Op::kHardSigmoid, "hard_sigmoid", 1, 1, {}},
      {Op::kSigmoid, "sigmoid", 1, 1, {}},
      {Op::kHardTanh, "hard_tanh", 1, 1, {F("min", -1.0), F("max", 1.0)}},
      {Op::kReshape, "reshape", 1, 1, {}},
      {Op::kFlatten, "flatten", 1, 1, {I("start_dim", 1)}},
      {Op::kSoftmax, "softmax", 1, 1, {I("axis", -1)}},
      {Op::kFakeQuant, "fake_quant", 1, 2, {F("scale", 1.0), Ireq("qmin"), Ireq("qmax"), I("zero_point", 0)}},
      {Op::kPad2D, "pad2d", 1, 1, {L("pad", {0, 0, 0, 0}), I("mode", 0), F("value", 0.0)}},
      {Op::kGatherChannels, "gather_channels", 1, 64, {Lreq("index")}},
      {Op::kGroupMean, "group_mean", 1, 1, {Ireq("group")}},
      {Op::kDynamicFakeQuant, "dynamic_fake_quant", 1, 1, {Ireq("qmax"), I("signed", 1), I("per_sample", 0)}},
  };
  return table;
}

[[noreturn]] void fail(const std::string& msg) { throw FormatError(msg); }
void need(bool cond, const std::string& msg) { if (!cond) fail(msg); }

std::string shape_str(const std::vector<std::int64_t>& s) {
  std::string out = "(";
  for (std::size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + (s.size() == 1 ? ",)" : ")");
}

// What inference sees of the node's inputs; `fail` messages get the node prefix added.
struct Ctx {
  const ModelDesc& m;
  const NodeDesc& node;
  const Attrs& a;
  const TensorDesc& in(std::size_t i) const { return m.tensors[node.inputs[i]]; }
  std::size_t n_in() const { return node.inputs.size(); }

  void dtype(std::size_t i, DType want) const {
    const TensorDesc& t = in(i);
    const bool ok = t.dtype == want || (want == DType::kF32 && t.dtype == DType::kF16 && t.constant);
    need(ok, "input " + std::to_string(i) + " has dtype " + dtype_name(static_cast<std::uint32_t>(t.dtype)) +
                 ", expected " + dtype_name(static_cast<std::uint32_t>(want)));
  }
  void constant(std::size_t i) const { need(in(i).constant, "input " + std::to_string(i) + " must be a constant"); }
  void rank(std::size_t i, std::size_t r) const {
    need(in(i).shape.size() == r, "input " + std::to_string(i) + " has shape " + shape_str(in(i).shape) +
                                      ", expected rank " + std::to_string(r));
  }
  // Inputs first.. are f32 constants of shape (c,) (or (1,) when allowed).
  void vectors(std::size_t first, std::int64_t c, bool allow_one = false) const {
    for (std::size_t i = first; i < n_in(); ++i) {
      dtype(i, DType::kF32);
      constant(i);
      const auto& s = in(i).shape;
      const bool ok = s.size() == 1 && (s[0] == c || (allow_one && s[0] == 1));
      need(ok, "input " + std::to_string(i) + " has shape " + shape_str(s) + ", expected (" + std::to_string(c) + ",)");
    }
  }
};

struct Result {
  bool f32 = true, bits = false;
  std::vector<std::int64_t> shape;
  bool from_declared = false;  // reshape: the declared shape with the same element count
};

std::int64_t norm_axis(std::int64_t axis, std::size_t ndim) {
  const auto n = static_cast<std::int64_t>(ndim);
  need(axis >= -n && axis < n, "axis " + std::to_string(axis) + " out of range for rank " + std::to_string(n));
  return axis < 0 ? axis + n : axis;
}

void transform_attrs(const Attrs& a) {
  need(a.i("acc_min") >= kI32Min && a.i("acc_min") <= a.i("acc_max") && a.i("acc_max") <= kI32Max,
       "need int32 acc_min <= acc_max");
  need(a.f("out_min") <= a.f("out_max"), "need out_min <= out_max (not NaN)");
}

// A float conv/dense weight: f32 (inputs: [bias]) or i8 (inputs: scale (O,), [bias]).
void float_weight(const Ctx& c) {
  if (c.in(1).dtype == DType::kI8) {
    need(c.n_in() >= 3, "an i8 weight needs a per-output-channel scale as input 2");
  } else {
    c.dtype(1, DType::kF32);
    need(c.n_in() <= 3, std::to_string(c.n_in()) + " inputs, expected 2..3 with an f32 weight (4 only with an i8 weight)");
  }
}

Result infer_conv(const Ctx& c, bool binary) {
  const DType dt = binary ? DType::kBits : DType::kF32;
  c.dtype(0, dt);
  if (binary) c.dtype(1, dt);
  else float_weight(c);
  c.constant(1);
  c.rank(0, 4);
  c.rank(1, 4);
  const auto& x = c.in(0).shape;
  const auto& w = c.in(1).shape;
  const std::int64_t g = c.a.i("groups");
  need(g >= 1 && x[1] % g == 0 && w[0] % g == 0,
       "groups " + std::to_string(g) + " must divide C=" + std::to_string(x[1]) + " and O=" + std::to_string(w[0]));
  need(w[1] * g == x[1], "weight has " + std::to_string(w[1]) + " input channels per group, expected " + std::to_string(x[1] / g));
  const Window win = make_window(c.a, false, x[2], x[3], w[2], w[3]);
  Result r;
  if (binary) {
    need(c.a.i("pad_value") == 0 || c.a.i("pad_value") == 1,
         "attribute 'pad_value' must be 0 or 1, got " + std::to_string(c.a.i("pad_value")));
    transform_attrs(c.a);
    r.bits = true;
  }
  c.vectors(2, w[0], /*allow_one=*/binary);  // a binary layer's multiplier/bias may be (1,)
  r.shape = {x[0], w[0], win.out_h, win.out_w};
  return r;
}

Result infer_dense(const Ctx& c, bool binary) {
  const DType dt = binary ? DType::kBits : DType::kF32;
  c.dtype(0, dt);
  if (binary) c.dtype(1, dt);
  else float_weight(c);
  for (std::size_t i = 0; i < 2; ++i) c.rank(i, 2);
  c.constant(1);
  const auto& x = c.in(0).shape;
  const auto& w = c.in(1).shape;
  need(x[1] == w[1], "input has K=" + std::to_string(x[1]) + ", weight has K=" + std::to_string(w[1]));
  Result r;
  if (binary) {
    transform_attrs(c.a);
    r.bits = true;
  }
  c.vectors(2, w[0], /*allow_one=*/binary);
  r.shape = {x[0], w[0]};
  return r;
}

Result infer_pool(const Ctx& c, DType dt) {
  c.dtype(0, dt);
  c.rank(0, 4);
  const auto& x = c.in(0).shape;
  const auto& k = c.a.ints("kernel");
  need(k.size() == 2 && k[0] >= 1 && k[1] >= 1 && k[0] <= 65535 && k[1] <= 65535,
       "attribute 'kernel' must be 2 ints in [1, 65535]");
  const Window win = make_window(c.a, true, x[2], x[3], k[0], k[1]);
  if (c.node.op == Op::kAvgPool2D) {
    need(c.a.i("count_include_pad") == 0 || c.a.i("count_include_pad") == 1, "attribute 'count_include_pad' must be 0 or 1");
  }
  Result r;
  r.f32 = dt == DType::kF32;
  r.bits = dt == DType::kBits;
  r.shape = {x[0], x[1], win.out_h, win.out_w};
  return r;
}

Result same_shape(const Ctx& c) {
  c.dtype(0, DType::kF32);
  Result r;
  r.shape = c.in(0).shape;
  return r;
}

Result per_channel(const Ctx& c, bool allow_one = false) {
  c.dtype(0, DType::kF32);
  need(c.in(0).shape.size() >= 2, "input 0 has shape " + shape_str(c.in(0).shape) + ", expected (N, C, ...)");
  c.vectors(1, c.in(0).shape[1], allow_one);
  return same_shape(c);
}

Result infer_binary(const Ctx& c) {
  c.dtype(0, DType::kF32);
  c.dtype(1, DType::kF32);
  const auto& a = c.in(0).shape;
  const auto& b = c.in(1).shape;
  bool ok = b.size() <= a.size();
  for (std::size_t i = 0; ok && i < b.size(); ++i) {
    const std::int64_t da = a[a.size() - b.size() + i];
    ok = b[i] == 1 || b[i] == da;
  }
  need(ok, "input 1 shape " + shape_str(b) + " does not broadcast to input 0 shape " + shape_str(a));
  return same_shape(c);
}

Result infer_concat(const Ctx& c) {
  const auto& first = c.in(0).shape;
  const std::int64_t ax = norm_axis(c.a.i("axis"), first.size());
  std::int64_t total = 0;
  for (std::size_t i = 0; i < c.n_in(); ++i) {
    c.dtype(i, DType::kF32);
    const auto& s = c.in(i).shape;
    bool same = s.size() == first.size();
    for (std::size_t j = 0; same && j < s.size(); ++j) same = static_cast<std::int64_t>(j) == ax || s[j] == first[j];
    need(same, "input " + std::to_string(i) + " shape " + shape_str(s) + " does not match " + shape_str(first) +
                   " outside axis " + std::to_string(ax));
    total += s[ax];
  }
  need(total <= kMaxDim, "concatenated axis too large");
  Result r;
  r.shape = first;
  r.shape[ax] = total;
  return r;
}

Result infer_fake_quant(const Ctx& c) {
  c.dtype(0, DType::kF32);
  const std::int64_t qmin = c.a.i("qmin"), qmax = c.a.i("qmax"), zp = c.a.i("zero_point");
  need(qmin >= kI32Min && qmin < qmax && qmax <= kI32Max, "need int32 qmin < qmax");
  need(zp >= kI32Min && zp <= kI32Max, "zero_point must be an int32");
  if (c.n_in() == 2) {
    need(c.in(0).shape.size() >= 2, "a per-channel scale needs an input of rank >= 2");
    c.vectors(1, c.in(0).shape[1]);
  } else {
    const double s = c.a.f("scale");
    need(std::isfinite(s) && s > 0, "attribute 'scale' must be finite and > 0, got " + std::to_string(s));
  }
  return same_shape(c);
}

Result infer_logic(const Ctx& c) {
  c.dtype(0, DType::kBits);
  c.dtype(1, DType::kBits);
  need(c.in(0).shape == c.in(1).shape,
       "inputs have shapes " + shape_str(c.in(0).shape) + " and " + shape_str(c.in(1).shape) + ", expected equal");
  Result r;
  r.f32 = false, r.bits = true, r.shape = c.in(0).shape;
  return r;
}

// f32 or bits, same dtype as the input (pad2d, gather_channels).
Result keep_dtype(const Ctx& c, std::vector<std::int64_t> shape) {
  Result r;
  r.f32 = c.in(0).dtype != DType::kBits;
  r.bits = !r.f32;
  r.shape = std::move(shape);
  return r;
}

bool f32_or_bits(const Ctx& c, std::size_t i) {
  const DType d = c.in(i).dtype;
  need(d == DType::kF32 || d == DType::kBits || (d == DType::kF16 && c.in(i).constant),
       "input " + std::to_string(i) + " has dtype " + dtype_name(static_cast<std::uint32_t>(d)) + ", expected f32 or bits");
  return d == DType::kBits;
}

Result infer_pad2d(const Ctx& c) {
  const bool bits = f32_or_bits(c, 0);
  c.rank(0, 4);
  const auto& p = c.a.ints("pad");
  need(p.size() == 4 && std::all_of(p.begin(), p.end(), [](std::int64_t v) { return v >= 0 && v <= 65535; }),
       "attribute 'pad' must be 4 ints in [0, 65535]");
  const std::int64_t mode = c.a.i("mode");
  need(mode == 0 || mode == 1, "attribute 'mode' must be 0 (constant) or 1 (replicate), got " + std::to_string(mode));
  const double v = c.a.f("value");
  if (bits) {
    need(mode == 1 || v == 1.0 || v == -1.0, "a bits input pads with value +1 or -1, got " + std::to_string(v));
  } else {
    need(std::isfinite(v), "attribute 'value' must be finite, got " + std::to_string(v));
  }
  const auto& x = c.in(0).shape;
  need(x[2] + p[0] + p[2] <= kI32Max && x[3] + p[1] + p[3] <= kI32Max, "padded size too large");
  return keep_dtype(c, {x[0], x[1], x[2] + p[0] + p[2], x[3] + p[1] + p[3]});
}

// Inputs of one dtype (f32 or bits), rank 2 or 4, equal outside axis 1; returns the channel total.
std::int64_t channel_inputs(const Ctx& c) {
  const bool bits = f32_or_bits(c, 0);
  const auto& first = c.in(0).shape;
  need(first.size() == 2 || first.size() == 4, "input 0 has shape " + shape_str(first) + ", expected rank 2 or 4");
  std::int64_t total = 0;
  for (std::size_t i = 0; i < c.n_in(); ++i) {
    need(f32_or_bits(c, i) == bits, "input " + std::to_string(i) + " has dtype " +
                                        dtype_name(static_cast<std::uint32_t>(c.in(i).dtype)) + ", expected " +
                                        dtype_name(static_cast<std::uint32_t>(c.in(0).dtype)) + " as input 0");
    const auto& s = c.in(i).shape;
    bool same = s.size() == first.size();
    for (std::size_t j = 0; same && j < s.size(); ++j) same = j == 1 || s[j] == first[j];
    need(same, "input " + std::to_string(i) + " shape " + shape_str(s) + " does not match " + shape_str(first) +
                   " outside axis 1");
    total += s[1];
  }
  return total;
}

Result infer_gather_channels(const Ctx& c) {
  const std::int64_t total = channel_inputs(c);
  const bool bits = c.in(0).dtype == DType::kBits;
  const auto& index = c.a.ints("index");
  need(!index.empty(), "attribute 'index' must not be empty");
  const std::int64_t low = bits ? 0 : -1;
  for (std::size_t j = 0; j < index.size(); ++j) {
    need(index[j] >= low && index[j] < total,
         "index entry " + std::to_string(j) + " is " + std::to_string(index[j]) + ", outside [" + std::to_string(low) +
             ", " + std::to_string(total) + ")" + (bits ? " (a bits output has no zero channel)" : ""));
  }
  std::vector<std::int64_t> shape = c.in(0).shape;
  shape[1] = static_cast<std::int64_t>(index.size());
  return keep_dtype(c, shape);
}

Result infer_group_mean(const Ctx& c) {
  c.dtype(0, DType::kF32);
  const auto& x = c.in(0).shape;
  need(x.size() == 2 || x.size() == 4, "input 0 has shape " + shape_str(x) + ", expected rank 2 or 4");
  const std::int64_t g = c.a.i("group");
  need(g >= 1 && x[1] % g == 0, "attribute 'group' " + std::to_string(g) + " must be >= 1 and divide C=" + std::to_string(x[1]));
  Result r;
  r.shape = x;
  r.shape[1] = x[1] / g;
  return r;
}

Result infer_dynamic_fake_quant(const Ctx& c) {
  c.dtype(0, DType::kF32);
  const std::int64_t qmax = c.a.i("qmax"), sgn = c.a.i("signed"), per = c.a.i("per_sample");
  need(qmax >= 1 && qmax <= (std::int64_t{1} << 24), "attribute 'qmax' must be in [1, 16777216], got " + std::to_string(qmax));
  need(sgn == 0 || sgn == 1, "attribute 'signed' must be 0 or 1, got " + std::to_string(sgn));
  need(per == 0 || per == 1, "attribute 'per_sample' must be 0 or 1, got " + std::to_string(per));
  need(per == 0 || c.in(0).shape.size() >= 2, "per_sample needs an input of rank >= 2");
  return same_shape(c);
}

Result infer(const Ctx& c) {
  Result r;
  switch (c.node.op) {
    case Op::kQuantize:
      c.dtype(0, DType::kF32);
      r.f32 = false, r.bits = true, r.shape = c.in(0).shape;
      return r;
    case Op::kDequantize:
      c.dtype(0, DType::kBits);
      r.shape = c.in(0).shape;
      return r;
    case Op::kBConv2D: return infer_conv(c, true);
    case Op::kConv2D: return infer_conv(c, false);
    case Op::kBDense: return infer_dense(c, true);
    case Op::kDense: return infer_dense(c, false);
    case Op::kBMaxPool2D: return infer_pool(c, DType::kBits);
    case Op::kMaxPool2D: case Op::kAvgPool2D: return infer_pool(c, DType::kF32);
    case Op::kGlobalAvgPool: {
      c.dtype(0, DType::kF32);
      c.rank(0, 4);
      const std::int64_t keep = c.a.i("keepdims");
      need(keep == 0 || keep == 1, "attribute 'keepdims' must be 0 or 1");
      const auto& x = c.in(0).shape;
      r.shape = keep ? std::vector<std::int64_t>{x[0], x[1], 1, 1} : std::vector<std::int64_t>{x[0], x[1]};
      return r;
    }
    case Op::kBatchNorm: case Op::kRPRelu: case Op::kDPRelu: return per_channel(c);
    case Op::kPRelu: return per_channel(c, true);
    case Op::kAdd: case Op::kMul: return infer_binary(c);
    case Op::kConcat: return infer_concat(c);
    case Op::kHardTanh:
      need(c.a.f("min") <= c.a.f("max"), "need min <= max (not NaN)");
      return same_shape(c);
    case Op::kReshape:
      r = same_shape(c);
      r.from_declared = true;
      return r;
    case Op::kFlatten: {
      c.dtype(0, DType::kF32);
      const auto& x = c.in(0).shape;
      const std::int64_t sd = norm_axis(c.a.i("start_dim"), x.size());
      std::int64_t rest = 1;
      for (std::size_t j = sd; j < x.size(); ++j) rest *= x[j];
      r.shape.assign(x.begin(), x.begin() + sd);
      r.shape.push_back(rest);
      return r;
    }
    case Op::kSoftmax:
      norm_axis(c.a.i("axis"), c.in(0).shape.size());
      return same_shape(c);
    case Op::kFakeQuant: return infer_fake_quant(c);
    case Op::kBXnor: case Op::kBOr: case Op::kBAnd: return infer_logic(c);
    case Op::kPad2D: return infer_pad2d(c);
    case Op::kGatherChannels: return infer_gather_channels(c);
    case Op::kGroupMean: return infer_group_mean(c);
    case Op::kDynamicFakeQuant: return infer_dynamic_fake_quant(c);
    default: return same_shape(c);  // relu, relu6, hard_sigmoid, sigmoid
  }
}

std::int64_t numel_of(const std::vector<std::int64_t>& s) {
  std::int64_t n = 1;
  for (auto d : s) n *= d;
  return n;
}

// The multiplier/bias of a binary conv/dense (inputs 2, 3) must be finite numbers.
void check_finite(const ModelDesc& m, const NodeDesc& node, const std::string& where) {
  for (std::size_t i = 2; i < node.inputs.size(); ++i) {
    const TensorDesc& t = m.tensors[node.inputs[i]];
    for (std::int64_t e = 0; e < t.numel(); ++e) {
      bool finite;
      if (t.dtype == DType::kF16) {
        std::uint16_t h;
        std::memcpy(&h, t.data + 2 * e, 2);
        finite = ((h >> 10) & 0x1F) != 0x1F;
      } else {
        float f;
        std::memcpy(&f, t.data + 4 * e, 4);
        finite = std::isfinite(f);
      }
      if (!finite) fail(where + ": multiplier/bias '" + t.name + "' must be finite");
    }
  }
}

void check_node(const ModelDesc& m, std::size_t k) {
  const NodeDesc& node = m.nodes[k];
  const OpSpec& spec = *find_op(static_cast<std::uint32_t>(node.op));
  const std::string where = node_where(m, k);
  if (node.inputs.size() < spec.min_inputs || node.inputs.size() > spec.max_inputs) {
    fail(where + ": " + std::to_string(node.inputs.size()) + " inputs, expected " + std::to_string(spec.min_inputs) +
         ".." + std::to_string(spec.max_inputs));
  }
  if (node.outputs.size() != 1) fail(where + ": " + std::to_string(node.outputs.size()) + " outputs, expected 1..1");
  const Attrs attrs(node, spec, where);
  Result r;
  try {
    r = infer(Ctx{m, node, attrs});
  } catch (const FormatError& e) {
    fail(where + ": " + e.what());
  }
  if (node.op == Op::kBConv2D || node.op == Op::kBDense) check_finite(m, node, where);
  const TensorDesc& out = m.tensors[node.outputs[0]];
  const bool dtype_ok = (out.dtype == DType::kF32 && r.f32) || (out.dtype == DType::kBits && r.bits);
  if (!dtype_ok) {
    fail(where + ": output '" + out.name + "' has dtype " + dtype_name(static_cast<std::uint32_t>(out.dtype)) +
         ", expected " + (r.f32 && r.bits ? "f32 or bits" : r.bits ? "bits" : "f32"));
  }
  if (r.from_declared) {
    if (out.numel() != m.tensors[node.inputs[0]].numel()) {
      fail(where + ": output '" + out.name + "' shape " + shape_str(out.shape) +
           " has a different element count than input " + shape_str(m.tensors[node.inputs[0]].shape));
    }
  } else if (out.shape != r.shape) {
    fail(where + ": output '" + out.name + "' declared shape " + shape_str(out.shape) + ", inferred " + shape_str(r.shape));
  }
}

}  // namespace

const char* dtype_name(std::uint32_t code) {
  static const char* names[] = {nullptr, "f32", "f16", "i8", "i32", "u8", "bits"};
  return code >= 1 && code <= 6 ? names[code] : nullptr;
}

const char* value_type_name(std::uint32_t code) {
  static const char* names[] = {nullptr, "int", "float", "string", "ints", "floats", "strings"};
  return code >= 1 && code <= 6 ? names[code] : nullptr;
}

const OpSpec* find_op(std::uint32_t code) {
  for (const OpSpec& s : op_table()) {
    if (static_cast<std::uint32_t>(s.op) == code) return &s;
  }
  return nullptr;
}

const char* op_name(std::uint32_t code) {
  const OpSpec* s = find_op(code);
  return s ? s->name : nullptr;
}

std::string known_ops() {
  std::string out;
  for (const OpSpec& s : op_table()) {
    out += (out.empty() ? "" : ", ") + std::to_string(static_cast<std::uint32_t>(s.op)) + "=" + s.name;
  }
  return out;
}

std::int64_t TensorDesc::numel() const { return numel_of(shape); }

const Value* NodeDesc::attr(const std::string& key) const {
  for (const auto& kv : attrs) {
    if (kv.first == key) return &kv.second;
  }
  return nullptr;
}

std::uint64_t storage_nbytes(DType dtype, const std::vector<std::int64_t>& shape) {
  // shape is validated (numel <= 2^31), so these products cannot overflow.
  static const std::uint64_t itemsize[] = {0, 4, 2, 1, 4, 1, 4};
  if (dtype != DType::kBits) return itemsize[static_cast<std::uint32_t>(dtype)] * numel_of(shape);
  const std::size_t axis = channel_axis(shape.size());
  const std::uint64_t c = static_cast<std::uint64_t>(shape[axis]);
  return 4 * static_cast<std::uint64_t>(numel_of(shape) / shape[axis]) * ((c + 31) / 32);
}

Attrs::Attrs(const NodeDesc& node, const OpSpec& spec, const std::string& where) {
  for (const auto& kv : node.attrs) {
    const auto it = std::find_if(spec.attrs.begin(), spec.attrs.end(),
                                 [&](const AttrSpec& a) { return kv.first == a.name; });
    if (it == spec.attrs.end()) {
      std::string known;
      for (const auto& a : spec.attrs) known += (known.empty() ? "" : ", ") + std::string(a.name);
      fail(where + ": unknown attribute '" + kv.first + "'; known: [" + known + "]");
    }
    if (kv.second.type != it->type) {
      fail(where + ": attribute '" + kv.first + "' has type " + value_type_name(static_cast<std::uint32_t>(kv.second.type)) +
           ", expected " + value_type_name(static_cast<std::uint32_t>(it->type)));
    }
  }
  for (const AttrSpec& a : spec.attrs) {
    const Value* given = node.attr(a.name);
    if (!given && a.required) fail(where + ": required attribute '" + a.name + "' missing");
    Value v;
    if (given) {
      v = *given;
    } else {
      v.type = a.type;
      v.i = a.i;
      v.f = a.f;
      v.ints = a.ints;
    }
    values_.emplace_back(a.name, std::move(v));
  }
}

const Value& Attrs::get(const char* name) const {
  for (const auto& kv : values_) {
    if (kv.first == name) return kv.second;
  }
  throw std::logic_error(std::string("bnnkit internal: attribute not in the op spec: ") + name);
}

std::int64_t Attrs::i(const char* name) const { return get(name).i; }
double Attrs::f(const char* name) const { return get(name).f; }
const std::vector<std::int64_t>& Attrs::ints(const char* name) const { return get(name).ints; }

Window make_window(const Attrs& a, bool pool, std::int64_t h, std::int64_t w, std::int64_t kh, std::int64_t kw) {
  Window win;
  win.kh = kh;
  win.kw = kw;
  auto pair = [&](const char* key, std::int64_t& y, std::int64_t& x) {
    const auto& v = a.ints(key);
    need(v.size() == 2 && v[0] >= 1 && v[1] >= 1 && v[0] <= 65535 && v[1] <= 65535,
         std::string("attribute '") + key + "' must be 2 ints in [1, 65535]");
    y = v[0];
    x = v[1];
  };
  if (pool && a.ints("stride").empty()) {
    win.sh = kh;
    win.sw = kw;
  } else {
    pair("stride", win.sh, win.sw);
  }
  if (!pool) pair("dilation", win.dh, win.dw);
  const auto& p = a.ints("pad");
  need(p.size() == 4 && std::all_of(p.begin(), p.end(), [](std::int64_t v) { return v >= 0 && v <= 65535; }),
       "attribute 'pad' must be 4 ints in [0, 65535]");
  win.pt = p[0], win.pl = p[1], win.pb = p[2], win.pr = p[3];
  if (pool) {
    need(win.pt < kh && win.pb < kh && win.pl < kw && win.pr < kw, "padding must be smaller than the kernel");
  }
  const std::int64_t span_h = h + win.pt + win.pb - win.dh * (kh - 1) - 1;
  const std::int64_t span_w = w + win.pl + win.pr - win.dw * (kw - 1) - 1;
  need(span_h >= 0 && span_w >= 0, "window larger than the padded input");
  win.out_h = span_h / win.sh + 1;
  win.out_w = span_w / win.sw + 1;
  return win;
}

std::string node_where(const ModelDesc& m, std::size_t k) {
  const NodeDesc& n = m.nodes[k];
  return "node " + std::to_string(k) + " '" + n.name + "' (" + op_name(static_cast<std::uint32_t>(n.op)) + ")";
}

void check_graph(const ModelDesc& m) {
  const auto& T = m.tensors;
  std::vector<char> avail(T.size(), 0);
  for (std::size_t i = 0; i < T.size(); ++i) avail[i] = T[i].constant;
  for (std::size_t pos = 0; pos < m.inputs.size(); ++pos) {
    const std::uint32_t i = m.inputs[pos];
    if (T[i].constant || T[i].dtype != DType::kF32 || avail[i]) {
      fail("graph input " + std::to_string(pos) + ": tensor " + std::to_string(i) + " '" + T[i].name +
           "' must be a distinct f32 activation");
    }
    avail[i] = 1;
  }
  for (std::size_t k = 0; k < m.nodes.size(); ++k) {
    const NodeDesc& node = m.nodes[k];
    for (std::uint32_t j : node.inputs) {
      if (!avail[j]) fail(node_where(m, k) + ": input tensor " + std::to_string(j) + " '" + T[j].name + "' is not produced before use");
    }
    if (node.outputs.size() == 1 && avail[node.outputs[0]]) {
      const std::uint32_t o = node.outputs[0];
      fail(node_where(m, k) + ": output tensor " + std::to_string(o) + " '" + T[o].name +
           "' is a constant, a graph input or produced twice");
    }
    check_node(m, k);
    avail[node.outputs[0]] = 1;
  }
  for (std::size_t i = 0; i < T.size(); ++i) {
    if (!avail[i]) fail("tensor " + std::to_string(i) + " '" + T[i].name + "': activation neither a graph input nor produced by a node");
  }
  for (std::size_t pos = 0; pos < m.outputs.size(); ++pos) {
    const std::uint32_t i = m.outputs[pos];
    if (T[i].dtype != DType::kF32) {
      fail("graph output " + std::to_string(pos) + ": tensor " + std::to_string(i) + " '" + T[i].name + "' must be f32");
    }
  }
}

}  // namespace format
}  // namespace bnnkit
