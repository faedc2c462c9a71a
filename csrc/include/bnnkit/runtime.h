// bnnkit runtime: load a .bnn file (format.h) and run it.
//
//   auto model = bnnkit::Model::from_file("net.bnn");    // mmap + full validation
//   bnnkit::Interpreter interp(model, /*num_threads=*/2); // shapes, arena, prepared ops
//   interp.set_input(0, x_nchw, n);                       // PyTorch order (NCHW)
//   interp.run();
//   interp.get_output(0, y, m);
//
// Inside, 4-D float activations are NHWC and packed bits are channels-last (docs/format.md
// section 5); the Interpreter converts at the boundary, so callers only see PyTorch order.
// Activations live in one 64-byte aligned arena where buffers whose lifetimes do not
// overlap share memory. Errors: format::FormatError (std::invalid_argument) for a bad file,
// std::invalid_argument for bad arguments, std::runtime_error for a wrong call order.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "bnnkit/format.h"

namespace bnnkit {

// The bytes of one validated model file (a read-only mapping or an aligned copy).
class Model {
 public:
  static std::shared_ptr<const Model> from_file(const std::string& path);
  static std::shared_ptr<const Model> from_buffer(const void* data, std::size_t size);  // copies
  ~Model();
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  const format::ModelDesc& desc() const { return desc_; }
  std::size_t size() const { return size_; }

 private:
  Model() = default;
  void parse();
  const std::uint8_t* data_ = nullptr;
  std::size_t size_ = 0;
  bool mapped_ = false;
  void* owned_ = nullptr;
  format::ModelDesc desc_;
};

struct TensorInfo {
  std::string name;
  std::vector<std::int64_t> shape;  // PyTorch order
  std::string dtype;                // "f32"
};

struct ProfileEntry {
  std::string op, node, shapes, kernel;
  double micros = 0.0;
};

class Interpreter {
 public:
  explicit Interpreter(std::shared_ptr<const Model> model, int num_threads = 1);
  ~Interpreter();
  Interpreter(const Interpreter&) = delete;
  Interpreter& operator=(const Interpreter&) = delete;

  const std::vector<TensorInfo>& inputs() const;
  const std::vector<TensorInfo>& outputs() const;
  int num_threads() const;
  std::size_t arena_bytes() const;

  // `count` must equal the input's element count; data in PyTorch order.
  void set_input(std::size_t index, const float* data, std::size_t count);
  void run();
  // Copies output `index` (PyTorch order); throws std::runtime_error before the first run().
  void get_output(std::size_t index, float* out, std::size_t count) const;
  // One entry per node of the last run(); throws std::runtime_error before the first run().
  std::vector<ProfileEntry> profile() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace bnnkit
