// Interpreter: turns a validated ModelDesc into runtime tensors, an activation arena and
// prepared ops, then runs the nodes in file order.
//
// Arena planning: every activation lives from the node that produces it (graph inputs:
// before the first node) to its last consumer (graph outputs: after the last node). Buffers
// are placed first-fit at 64-byte aligned offsets, avoiding only the buffers whose
// lifetimes overlap, so memory is reused across the graph. An op's output never aliases
// its inputs (their lifetimes meet at that node).
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <new>
#include <stdexcept>

#include "bnnkit/runtime.h"
#include "bnnkit/thread_pool.h"
#include "runtime/ops.h"

namespace bnnkit {
namespace {

constexpr std::size_t kMaxArenaBytes = std::size_t{1} << 32;  // 4 GiB: refuse absurd graphs
constexpr std::size_t kMaxFirstFit = 512;  // live buffers searched for a gap before appending

struct FreeDeleter {
  void operator()(void* p) const { std::free(p); }
};
using Aligned = std::unique_ptr<void, FreeDeleter>;

Aligned aligned_bytes(std::size_t n) {
  void* p = std::aligned_alloc(64, std::max<std::size_t>(64, (n + 63) / 64 * 64));
  if (!p) throw std::bad_alloc();
  return Aligned(p);
}

std::string shape_str(const std::vector<std::int64_t>& s) {
  std::string out = "(";
  for (std::size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + (s.size() == 1 ? ",)" : ")");
}

struct Span {
  std::size_t offset, size;
  std::int64_t start, end;
};

}  // namespace

struct Interpreter::Impl {
  std::shared_ptr<const Model> model;
  std::vector<rt::Tensor> tensors;
  std::vector<std::unique_ptr<rt::OpImpl>> ops;
  std::vector<Aligned> owned;
  Aligned arena;
  std::size_t arena_bytes = 0;
  std::unique_ptr<ThreadPool> pool;
  std::vector<double> micros;
  std::vector<char> input_set;
  bool ran = false;
  std::vector<TensorInfo> inputs, outputs;

  void make_tensors();
  void plan_arena();
  void make_ops();
};

void Interpreter::Impl::make_tensors() {
  const auto& desc = model->desc();
  for (const format::TensorDesc& d : desc.tensors) {
    rt::Tensor t;
    t.dtype = d.dtype == format::DType::kBits ? format::DType::kBits : format::DType::kF32;
    t.shape = d.shape;
    t.numel = d.numel();
    t.bytes = static_cast<std::size_t>(t.dtype == format::DType::kBits ? format::storage_nbytes(d.dtype, d.shape)
                                                                        : 4 * static_cast<std::uint64_t>(t.numel));
    if (d.constant && (d.dtype == format::DType::kBits || (d.dtype == format::DType::kF32 && d.shape.size() != 4))) {
      t.data = const_cast<std::uint8_t*>(d.data);  // read only: ops never write constants
    } else if (d.constant && (d.dtype == format::DType::kF32 || d.dtype == format::DType::kF16)) {
      owned.push_back(aligned_bytes(t.bytes));
      t.data = owned.back().get();
      const std::vector<float> values = rt::constant_values(d);
      rt::from_logical(values.data(), t);
    }
    tensors.push_back(std::move(t));  // i8/i32/u8 constants: ops read them from the file (i8 weights)
  }
}

void Interpreter::Impl::plan_arena() {
  const auto& desc = model->desc();
  const auto n_nodes = static_cast<std::int64_t>(desc.nodes.size());
  std::vector<std::int64_t> start(tensors.size(), -1), end(tensors.size(), -1);
  for (std::int64_t k = 0; k < n_nodes; ++k) {
    for (auto j : desc.nodes[k].inputs) end[j] = std::max(end[j], k);
    start[desc.nodes[k].outputs[0]] = k;
    end[desc.nodes[k].outputs[0]] = std::max(end[desc.nodes[k].outputs[0]], k);
  }
  for (auto j : desc.outputs) end[j] = n_nodes;
  for (auto j : desc.inputs) end[j] = std::max(end[j], std::int64_t{-1});
  std::vector<std::size_t> order;
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    if (!desc.tensors[i].constant) order.push_back(i);
  }
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return start[a] < start[b]; });
  std::vector<Span> placed;
  std::vector<std::size_t> offsets(tensors.size(), 0);
  bool bump = false;  // set once a hostile graph keeps very many buffers alive: append only
  for (std::size_t i : order) {
    const std::size_t size = (tensors[i].bytes + 63) / 64 * 64;
    std::size_t off = arena_bytes;
    if (!bump) {
      // Tensors come in order of start, so a span that ended before this one starts is dead
      // for every later tensor too: drop it; the rest all overlap this tensor's lifetime.
      placed.erase(std::remove_if(placed.begin(), placed.end(), [&](const Span& s) { return s.end < start[i]; }),
                   placed.end());
      std::sort(placed.begin(), placed.end(), [](const Span& a, const Span& b) { return a.offset < b.offset; });
      off = 0;
      for (const Span& s : placed) {
        if (off + size <= s.offset) break;
        off = std::max(off, s.offset + s.size);
      }
      placed.push_back({off, size, start[i], end[i]});
      bump = placed.size() > kMaxFirstFit;
    }
    offsets[i] = off;
    arena_bytes = std::max(arena_bytes, off + size);
    if (arena_bytes > kMaxArenaBytes) {
      throw format::FormatError("activations need more than " + std::to_string(kMaxArenaBytes) +
                                " bytes of arena (tensor " + std::to_string(i) + " '" + desc.tensors[i].name + "')");
    }
  }
  arena = aligned_bytes(arena_bytes);
  for (std::size_t i : order) tensors[i].data = static_cast<char*>(arena.get()) + offsets[i];
}

void Interpreter::Impl::make_ops() {
  const auto& desc = model->desc();
  for (std::size_t k = 0; k < desc.nodes.size(); ++k) {
    const format::NodeDesc& node = desc.nodes[k];
    const std::string where = format::node_where(desc, k);
    const format::Attrs attrs(node, *format::find_op(static_cast<std::uint32_t>(node.op)), where);
    rt::OpArgs args{desc, node, attrs, {}, &tensors[node.outputs[0]]};
    for (auto j : node.inputs) args.in.push_back(&tensors[j]);
    std::unique_ptr<rt::OpImpl> op;
    try {
      op = rt::make_binary_op(args);
      if (!op) op = rt::make_float_op(args);
      if (!op) op = rt::make_elementwise_op(args);
      if (!op) op = rt::make_channel_op(args);
    } catch (const std::invalid_argument& e) {
      throw format::FormatError(where + ": " + e.what());
    }
    if (!op) throw std::logic_error(where + ": bnnkit internal: no implementation");
    ops.push_back(std::move(op));
  }
}

Interpreter::Interpreter(std::shared_ptr<const Model> model, int num_threads) : impl_(new Impl) {
  if (!model) throw std::invalid_argument("Interpreter: model is null");
  if (num_threads < 1 || num_threads > 1024) {
    throw std::invalid_argument("num_threads must be in [1, 1024], got " + std::to_string(num_threads));
  }
  Impl& s = *impl_;
  s.model = std::move(model);
  s.make_tensors();
  s.plan_arena();
  s.make_ops();
  s.pool.reset(new ThreadPool(num_threads));
  const auto& desc = s.model->desc();
  for (int part = 0; part < 2; ++part) {
    for (auto j : part ? desc.outputs : desc.inputs) {
      (part ? s.outputs : s.inputs).push_back({desc.tensors[j].name, desc.tensors[j].shape, "f32"});
    }
  }
  s.input_set.assign(s.inputs.size(), 0);
  s.micros.assign(desc.nodes.size(), 0.0);
}

Interpreter::~Interpreter() = default;

const std::vector<TensorInfo>& Interpreter::inputs() const { return impl_->inputs; }
const std::vector<TensorInfo>& Interpreter::outputs() const { return impl_->outputs; }
int Interpreter::num_threads() const { return impl_->pool->num_threads(); }
std::size_t Interpreter::arena_bytes() const { return impl_->arena_bytes; }

void Interpreter::set_input(std::size_t index, const float* data, std::size_t count) {
  Impl& s = *impl_;
  if (index >= s.inputs.size()) {
    throw std::invalid_argument("input index " + std::to_string(index) + " out of range (" +
                                std::to_string(s.inputs.size()) + " inputs)");
  }
  const rt::Tensor& t = s.tensors[s.model->desc().inputs[index]];
  if (count != static_cast<std::size_t>(t.numel)) {
    throw std::invalid_argument("input " + std::to_string(index) + " '" + s.inputs[index].name + "': expected " +
                                std::to_string(t.numel) + " elements of shape " + shape_str(t.shape) + ", got " +
                                std::to_string(count));
  }
  rt::from_logical(data, t);
  s.input_set[index] = 1;
}

void Interpreter::run() {
  Impl& s = *impl_;
  for (std::size_t i = 0; i < s.inputs.size(); ++i) {
    if (!s.input_set[i]) throw std::runtime_error("run(): input " + std::to_string(i) + " '" + s.inputs[i].name + "' was not set");
  }
  rt::RunContext ctx;
  ctx.pool = s.pool.get();
  for (std::size_t k = 0; k < s.ops.size(); ++k) {
    const auto t0 = std::chrono::steady_clock::now();
    s.ops[k]->run(ctx);
    const auto t1 = std::chrono::steady_clock::now();
    s.micros[k] = std::chrono::duration<double, std::micro>(t1 - t0).count();
  }
  s.ran = true;
}

void Interpreter::get_output(std::size_t index, float* out, std::size_t count) const {
  const Impl& s = *impl_;
  if (index >= s.outputs.size()) {
    throw std::invalid_argument("output index " + std::to_string(index) + " out of range (" +
                                std::to_string(s.outputs.size()) + " outputs)");
  }
  if (!s.ran) throw std::runtime_error("get_output(): run() has not been called yet");
  const rt::Tensor& t = s.tensors[s.model->desc().outputs[index]];
  if (count != static_cast<std::size_t>(t.numel)) {
    throw std::invalid_argument("output " + std::to_string(index) + ": buffer has " + std::to_string(count) +
                                " elements, expected " + std::to_string(t.numel));
  }
  rt::to_logical(t, out);
}

std::vector<ProfileEntry> Interpreter::profile() const {
  const Impl& s = *impl_;
  if (!s.ran) throw std::runtime_error("profile(): run() has not been called yet");
  const auto& desc = s.model->desc();
  std::vector<ProfileEntry> out;
  for (std::size_t k = 0; k < desc.nodes.size(); ++k) {
    const auto& node = desc.nodes[k];
    ProfileEntry e;
    e.op = format::op_name(static_cast<std::uint32_t>(node.op));
    e.node = node.name;
    for (std::size_t i = 0; i < node.inputs.size(); ++i) e.shapes += (i ? " " : "") + shape_str(desc.tensors[node.inputs[i]].shape);
    e.shapes += " -> " + shape_str(desc.tensors[node.outputs[0]].shape);
    e.kernel = s.ops[k]->kernel();
    e.micros = s.micros[k];
    out.push_back(std::move(e));
  }
  return out;
}

}  // namespace bnnkit
