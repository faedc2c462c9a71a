// Internal: runtime tensors, the op interface and the helpers ops share.
//
// Layout rule (docs/format.md section 5): a 4-D f32 tensor (activation or constant) is held
// NHWC; every other f32 tensor is row-major in its logical (PyTorch-order) shape; a bits
// tensor is channels-last with C packed into words_for(C) uint32 words (as in the file).
// Ops read constant weights/vectors from their TensorDesc (logical order) once, when they
// are created, and keep their own prepared copies.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "bnnkit/bits.h"
#include "bnnkit/format.h"
#include "runtime/op_spec.h"

namespace bnnkit {

class ThreadPool;

namespace rt {

struct Tensor {
  format::DType dtype = format::DType::kF32;  // kF32 or kBits at run time
  std::vector<std::int64_t> shape;            // logical, PyTorch order
  void* data = nullptr;
  std::int64_t numel = 1;
  std::size_t bytes = 0;

  bool nhwc() const { return dtype == format::DType::kF32 && shape.size() == 4; }
  float* f() const { return static_cast<float*>(data); }
  word_t* w() const { return static_cast<word_t*>(data); }
  // Element strides of each logical axis in the f32 buffer.
  std::vector<std::int64_t> strides() const;
  // Elements between consecutive channels (axis 1) in the f32 buffer, and channel count.
  std::int64_t channel_stride() const;
};

struct RunContext {
  ThreadPool* pool = nullptr;
};

class OpImpl {
 public:
  virtual ~OpImpl() = default;
  virtual void run(const RunContext& ctx) = 0;
  virtual std::string kernel() const { return "portable"; }
};

struct OpArgs {
  const format::ModelDesc& model;
  const format::NodeDesc& node;
  const format::Attrs& attrs;
  std::vector<Tensor*> in;
  Tensor* out;
  const format::TensorDesc& desc(std::size_t i) const { return model.tensors[node.inputs[i]]; }
};

// Factories, one per ops_*.cc file; nullptr when the op is not theirs.
std::unique_ptr<OpImpl> make_binary_op(const OpArgs& a);
std::unique_ptr<OpImpl> make_float_op(const OpArgs& a);
std::unique_ptr<OpImpl> make_elementwise_op(const OpArgs& a);
std::unique_ptr<OpImpl> make_channel_op(const OpArgs& a);

// A constant f32/f16 tensor's values in logical row-major order.
std::vector<float> constant_values(const format::TensorDesc& t);
// The weight (input 1) of conv2d/dense in logical order: f32/f16 values, or an i8 weight
// times its per-output-channel scale (input 2) in float32; and the index of the bias input.
std::vector<float> weight_values(const OpArgs& a);
std::size_t bias_input(const OpArgs& a);
// Per-channel vector input i, or `count` copies of `fallback` when the input is absent.
std::vector<float> channel_vector(const OpArgs& a, std::size_t i, std::int64_t count, float fallback);

// Logical-order copies of an f32 tensor (the Interpreter boundary, reshape).
void to_logical(const Tensor& t, float* dst);
void from_logical(const float* src, const Tensor& t);

// C[M x N] += A[M x K] * B[K x N], row-major with leading dimensions (gemm.cc).
void sgemm_acc(std::int64_t m, std::int64_t n, std::int64_t k, const float* a, std::int64_t lda,
               const float* b, std::int64_t ldb, float* c, std::int64_t ldc);
const char* sgemm_name();

// Runs body over [0, n) on the pool (or inline when pool is null). `work` estimates the
// op's total scalar operations (multiply-adds, element visits); below kMinParallelWork the
// body runs inline, because waking a worker (~10 us) costs more than it saves. Each
// output's value never depends on the split, so results are the same either way.
constexpr std::int64_t kMinParallelWork = std::int64_t(1) << 17;
void parallel(const RunContext& ctx, std::int64_t n, const std::function<void(std::int64_t, std::int64_t)>& body,
              std::int64_t work = -1);

}  // namespace rt
}  // namespace bnnkit
