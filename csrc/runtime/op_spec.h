// Internal: the op table of the .bnn format (docs/format.md section 8) — input counts,
// attribute names/types/defaults, and the resolved attributes a node runs with. Shared by
// the validator (graph.cc) and the op implementations (ops_*.cc). Mirrors
// src/bnnkit/format/ops.py.
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "bnnkit/format.h"

namespace bnnkit {
namespace format {

struct AttrSpec {
  const char* name;
  ValueType type;
  bool required;
  std::int64_t i;               // default of an int attribute
  double f;                     // default of a float attribute
  std::vector<std::int64_t> ints;  // default of an ints attribute
};

struct OpSpec {
  Op op;
  const char* name;
  std::uint32_t min_inputs, max_inputs;
  std::vector<AttrSpec> attrs;
};

const OpSpec* find_op(std::uint32_t code);

// A node's attributes with defaults filled in; typed getters (names must be in the spec).
class Attrs {
 public:
  Attrs(const NodeDesc& node, const OpSpec& spec, const std::string& where);
  std::int64_t i(const char* name) const;
  double f(const char* name) const;
  const std::vector<std::int64_t>& ints(const char* name) const;

 private:
  const Value& get(const char* name) const;
  std::vector<std::pair<std::string, Value>> values_;
};

// Geometry of a 2-D window op in PyTorch order (N, C, H, W) -> (N, O, out_h, out_w).
struct Window {
  std::int64_t kh = 1, kw = 1, sh = 1, sw = 1, dh = 1, dw = 1;
  std::int64_t pt = 0, pl = 0, pb = 0, pr = 0;
  std::int64_t out_h = 1, out_w = 1;
};

// The full string for "node k 'name' (op)".
std::string node_where(const ModelDesc& m, std::size_t k);

}  // namespace format
}  // namespace bnnkit

namespace bnnkit {
namespace format {
// Validates stride/dilation/pad (and kernel for pools) and computes the output size
// floor((H + top + bottom - d*(K-1) - 1) / s) + 1 >= 1; throws FormatError without a prefix.
Window make_window(const Attrs& a, bool pool, std::int64_t h, std::int64_t w, std::int64_t kh,
                   std::int64_t kw);
}  // namespace format
}  // namespace bnnkit
