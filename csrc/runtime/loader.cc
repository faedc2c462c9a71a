// .bnn loader, part 1: the byte-level parse with structural validation (docs/format.md
// sections 2-7, items 1-5). Every read goes through Cursor, which checks the remaining
// length first; counts are checked against both their limit and the bytes left (so a
// hostile count cannot make us allocate or loop much); all offset/size arithmetic is done
// in uint64 with explicit overflow checks. Op contracts are checked by check_graph().
#include <algorithm>
#include <cstring>
#include <sstream>
#include <unordered_map>

#include "bnnkit/format.h"
#include "runtime/op_spec.h"

namespace bnnkit {
namespace format {
namespace {

[[noreturn]] void fail(const std::string& msg) { throw FormatError(msg); }

bool valid_utf8(const std::uint8_t* p, std::size_t n) {
  std::size_t i = 0;
  while (i < n) {
    const std::uint8_t c = p[i];
    std::size_t len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
    if (len == 0 || i + len > n) return false;
    std::uint32_t cp = len == 1 ? c : c & (0x7F >> len);
    for (std::size_t k = 1; k < len; ++k) {
      if ((p[i + k] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (p[i + k] & 0x3F);
    }
    const std::uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min_cp[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += len;
  }
  return true;
}

class Cursor {
 public:
  Cursor(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}

  std::size_t pos() const { return pos_; }
  std::size_t remaining() const { return size_ - pos_; }

  const std::uint8_t* take(std::size_t n, const std::string& what) {
    if (n > remaining()) {
      fail("truncated file: " + what + " at byte " + std::to_string(pos_) + " needs " +
           std::to_string(n) + " bytes, file has " + std::to_string(size_));
    }
    const std::uint8_t* p = data_ + pos_;
    pos_ += n;
    return p;
  }
  template <typename T>
  T get(const std::string& what) {
    T v;
    std::memcpy(&v, take(sizeof(T), what), sizeof(T));  // little-endian hosts only
    return v;
  }
  std::uint32_t u32(const std::string& what) { return get<std::uint32_t>(what); }

  std::uint32_t count(const std::string& what, std::uint32_t limit, std::size_t min_size) {
    const std::uint32_t n = u32(what);
    if (n > limit || std::uint64_t{n} * min_size > remaining()) {
      fail(what + " " + std::to_string(n) + " exceeds the limit " + std::to_string(limit) +
           " or the remaining file size");
    }
    return n;
  }

  std::string string(const std::string& what) {
    const std::uint32_t n = u32(what + " length");
    if (n > kMaxString) fail(what + ": string length " + std::to_string(n) + " exceeds " + std::to_string(kMaxString));
    const std::uint8_t* p = take(n, what);
    if (!valid_utf8(p, n)) fail(what + ": not valid UTF-8");
    return std::string(reinterpret_cast<const char*>(p), n);
  }

  Value value(const std::string& what) {
    Value v;
    const std::uint32_t code = u32(what + " type");
    if (!value_type_name(code)) fail(what + ": unknown value type " + std::to_string(code) + " (known: 1..6)");
    v.type = static_cast<ValueType>(code);
    switch (v.type) {
      case ValueType::kInt: v.i = get<std::int64_t>(what); break;
      case ValueType::kFloat: v.f = get<double>(what); break;
      case ValueType::kString: v.s = string(what); break;
      case ValueType::kInts: {
        const std::uint32_t n = count(what + " count", kMaxArray, 8);
        for (std::uint32_t k = 0; k < n; ++k) v.ints.push_back(get<std::int64_t>(what));
        break;
      }
      case ValueType::kFloats: {
        const std::uint32_t n = count(what + " count", kMaxArray, 8);
        for (std::uint32_t k = 0; k < n; ++k) v.floats.push_back(get<double>(what));
        break;
      }
      case ValueType::kStrings: {
        const std::uint32_t n = count(what + " count", kMaxArray, 4);
        for (std::uint32_t k = 0; k < n; ++k) v.strings.push_back(string(what + "[" + std::to_string(k) + "]"));
        break;
      }
    }
    return v;
  }

 private:
  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t pos_ = 0;
};

struct Header {
  std::uint32_t version, flags, n_metadata, n_tensors, n_nodes, n_inputs, n_outputs, reserved;
  std::uint64_t data_offset, data_size;
};

Header read_header(Cursor& cur) {
  if (std::memcmp(cur.take(8, "magic"), kMagic, 8) != 0) fail("bad magic: not a .bnn file");
  Header h;
  h.version = cur.u32("version");
  if (h.version > kFormatVersion) {
    fail("format version " + std::to_string(h.version) + " is newer than this runtime supports (" +
         std::to_string(kFormatVersion) + ")");
  }
  if (h.version == 0) fail("format version 0 is invalid");
  h.flags = cur.u32("flags");
  h.n_metadata = cur.u32("n_metadata");
  h.n_tensors = cur.u32("n_tensors");
  h.n_nodes = cur.u32("n_nodes");
  h.n_inputs = cur.u32("n_inputs");
  h.n_outputs = cur.u32("n_outputs");
  h.reserved = cur.u32("reserved");
  h.data_offset = cur.get<std::uint64_t>("data_offset");
  h.data_size = cur.get<std::uint64_t>("data_size");
  if (h.flags) fail("header flags must be 0, got " + std::to_string(h.flags));
  if (h.reserved) fail("header reserved must be 0, got " + std::to_string(h.reserved));
  const struct { const char* name; std::uint32_t v, lo, hi; } limits[] = {
      {"n_metadata", h.n_metadata, 0, kMaxMetadata}, {"n_tensors", h.n_tensors, 0, kMaxTensors},
      {"n_nodes", h.n_nodes, 0, kMaxNodes}, {"n_inputs", h.n_inputs, 1, kMaxGraphIO},
      {"n_outputs", h.n_outputs, 1, kMaxGraphIO}};
  for (const auto& l : limits) {
    if (l.v < l.lo || l.v > l.hi) {
      fail(std::string("header ") + l.name + " " + std::to_string(l.v) + " outside [" +
           std::to_string(l.lo) + ", " + std::to_string(l.hi) + "]");
    }
  }
  return h;
}

void read_metadata(Cursor& cur, std::uint32_t n, ModelDesc& m) {
  if (std::uint64_t{n} * 12 > cur.remaining()) fail("n_metadata " + std::to_string(n) + " exceeds the remaining file size");
  for (std::uint32_t i = 0; i < n; ++i) {
    std::string key = cur.string("metadata " + std::to_string(i) + " key");
    for (const auto& kv : m.metadata) {
      if (kv.first == key) fail("metadata " + std::to_string(i) + ": duplicate key '" + key + "'");
    }
    Value v = cur.value("metadata " + std::to_string(i) + " '" + key + "'");
    m.metadata.emplace_back(std::move(key), std::move(v));
  }
  for (const char* key : {"bnnkit.bit_convention", "bnnkit.producer"}) {
    const auto it = std::find_if(m.metadata.begin(), m.metadata.end(),
                                 [&](const auto& kv) { return kv.first == key; });
    if (it == m.metadata.end() || it->second.type != ValueType::kString) {
      fail(std::string("metadata: required key '") + key + "' of type string missing");
    }
    if (std::strcmp(key, "bnnkit.bit_convention") == 0 && it->second.s != kBitConvention) {
      fail("metadata 'bnnkit.bit_convention' is '" + it->second.s + "', this runtime supports '" +
           kBitConvention + "'");
    }
  }
}

std::string shape_str(const std::vector<std::int64_t>& s) {
  std::string out = "(";
  for (std::size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + (s.size() == 1 ? ",)" : ")");
}

TensorDesc read_tensor(Cursor& cur, std::uint32_t i) {
  TensorDesc t;
  t.name = cur.string("tensor " + std::to_string(i) + " name");
  const std::string where = "tensor " + std::to_string(i) + " '" + t.name + "'";
  const std::uint32_t code = cur.u32(where + " dtype");
  const std::uint32_t flags = cur.u32(where + " flags");
  const std::uint32_t ndim = cur.u32(where + " ndim");
  if (t.name.empty()) fail("tensor " + std::to_string(i) + ": empty name");
  if (!dtype_name(code)) fail(where + ": unknown dtype code " + std::to_string(code) + " (known: 1..6)");
  if (flags & ~kFlagConstant) fail(where + ": unknown flags " + std::to_string(flags));
  if (ndim < 1 || ndim > kMaxNdim) fail(where + ": ndim " + std::to_string(ndim) + " outside [1, 6]");
  t.dtype = static_cast<DType>(code);
  t.constant = flags & kFlagConstant;
  bool ok = true;
  std::int64_t numel = 1;
  for (std::uint32_t d = 0; d < ndim; ++d) {
    const std::int64_t dim = cur.get<std::int64_t>(where + " dims");
    t.shape.push_back(dim);
    if (dim < 1 || dim > kMaxDim) ok = false;
    else if (ok && (numel *= dim) > kMaxElements) ok = false;  // numel <= 2^31, dim < 2^31: no overflow
  }
  t.offset = cur.get<std::uint64_t>(where + " offset");
  t.nbytes = cur.get<std::uint64_t>(where + " nbytes");
  if (!ok) {
    fail(where + ": shape " + shape_str(t.shape) + " has a dim outside [1, " + std::to_string(kMaxDim) +
         "] or more than " + std::to_string(kMaxElements) + " elements");
  }
  return t;
}

void check_data(ModelDesc& m, const std::uint8_t* base, std::uint64_t data_size) {
  struct Span { std::uint64_t begin, end; std::size_t index; };
  std::vector<Span> spans;
  for (std::size_t i = 0; i < m.tensors.size(); ++i) {
    TensorDesc& t = m.tensors[i];
    const std::string where = "tensor " + std::to_string(i) + " '" + t.name + "'";
    if (!t.constant) {
      if (t.offset || t.nbytes) fail(where + ": an activation must have offset 0 and nbytes 0");
      continue;
    }
    const std::uint64_t want = storage_nbytes(t.dtype, t.shape);
    if (t.nbytes != want) {
      fail(where + ": nbytes " + std::to_string(t.nbytes) + " != " + std::to_string(want) + " for " +
           dtype_name(static_cast<std::uint32_t>(t.dtype)) + " " + shape_str(t.shape));
    }
    if (t.offset % kAlignment) fail(where + ": offset " + std::to_string(t.offset) + " is not a multiple of 64");
    if (t.offset > data_size || t.nbytes > data_size - t.offset) {
      fail(where + ": data at offset " + std::to_string(t.offset) + " (+" + std::to_string(t.nbytes) +
           " bytes) is past the end of the data section (" + std::to_string(data_size) + " bytes)");
    }
    t.data = base + t.offset;
    spans.push_back({t.offset, t.offset + t.nbytes, i});
  }
  std::sort(spans.begin(), spans.end(), [](const Span& a, const Span& b) { return a.begin < b.begin; });
  for (std::size_t k = 1; k < spans.size(); ++k) {
    if (spans[k].begin < spans[k - 1].end) {
      fail("tensor " + std::to_string(spans[k].index) + " '" + m.tensors[spans[k].index].name +
           "': data overlaps tensor " + std::to_string(spans[k - 1].index) + " '" +
           m.tensors[spans[k - 1].index].name + "'");
    }
  }
}

NodeDesc read_node(Cursor& cur, std::uint32_t i, std::size_t n_tensors);

}  // namespace

ModelDesc parse_model(const std::uint8_t* data, std::size_t size) {
  if (!data && size) fail("null buffer");
  Cursor cur(data, size);
  const Header h = read_header(cur);
  ModelDesc m;
  m.version = h.version;
  read_metadata(cur, h.n_metadata, m);
  if (std::uint64_t{h.n_tensors} * 40 > cur.remaining()) {
    fail("n_tensors " + std::to_string(h.n_tensors) + " exceeds the remaining file size");
  }
  std::unordered_map<std::string, std::uint32_t> names;
  for (std::uint32_t i = 0; i < h.n_tensors; ++i) {
    m.tensors.push_back(read_tensor(cur, i));
    const auto ins = names.emplace(m.tensors.back().name, i);
    if (!ins.second) {
      fail("tensor " + std::to_string(i) + " '" + m.tensors.back().name + "': duplicate name (also tensor " +
           std::to_string(ins.first->second) + ")");
    }
  }
  if (std::uint64_t{h.n_nodes} * 20 > cur.remaining()) {
    fail("n_nodes " + std::to_string(h.n_nodes) + " exceeds the remaining file size");
  }
  for (std::uint32_t i = 0; i < h.n_nodes; ++i) m.nodes.push_back(read_node(cur, i, m.tensors.size()));
  for (int part = 0; part < 2; ++part) {
    const char* name = part ? "output" : "input";
    auto& list = part ? m.outputs : m.inputs;
    const std::uint32_t n = part ? h.n_outputs : h.n_inputs;
    for (std::uint32_t k = 0; k < n; ++k) {
      const std::uint32_t j = cur.u32(std::string("graph ") + name + "s");
      if (j >= m.tensors.size()) {
        fail(std::string("graph ") + name + " " + std::to_string(k) + ": tensor index " + std::to_string(j) +
             " out of range (" + std::to_string(m.tensors.size()) + " tensors)");
      }
      list.push_back(j);
    }
  }
  const std::uint64_t tables_end = cur.pos();
  if (h.data_offset % kAlignment || h.data_offset < tables_end) {
    fail("header data_offset " + std::to_string(h.data_offset) + " must be a multiple of 64 and >= the end of the tables (" +
         std::to_string(tables_end) + ")");
  }
  if (h.data_offset > size || h.data_size != size - h.data_offset) {
    fail("header data_offset " + std::to_string(h.data_offset) + " + data_size " + std::to_string(h.data_size) +
         " != file size " + std::to_string(size));
  }
  check_data(m, data + h.data_offset, h.data_size);
  check_graph(m);
  return m;
}

namespace {

NodeDesc read_node(Cursor& cur, std::uint32_t i, std::size_t n_tensors) {
  NodeDesc node;
  node.name = cur.string("node " + std::to_string(i) + " name");
  const std::uint32_t code = cur.u32("node " + std::to_string(i) + " op");
  const char* op = op_name(code);
  if (!op) {
    fail("node " + std::to_string(i) + " '" + node.name + "': unknown op code " + std::to_string(code) +
         "; known ops: " + known_ops());
  }
  node.op = static_cast<Op>(code);
  const std::string where = "node " + std::to_string(i) + " '" + node.name + "' (" + op + ")";
  const OpSpec& spec = *find_op(code);
  for (int part = 0; part < 2; ++part) {
    auto& list = part ? node.outputs : node.inputs;
    const std::uint32_t n = cur.u32(where + (part ? " number of outputs" : " number of inputs"));
    const std::uint32_t lo = part ? 1 : spec.min_inputs, hi = part ? 1 : spec.max_inputs;
    if (n < lo || n > hi) {
      fail(where + ": " + std::to_string(n) + (part ? " outputs" : " inputs") + ", expected " + std::to_string(lo) +
           ".." + std::to_string(hi));
    }
    for (std::uint32_t k = 0; k < n; ++k) {
      const std::uint32_t j = cur.u32(where + (part ? " outputs" : " inputs"));
      if (j >= n_tensors) {
        fail(where + (part ? ": output" : ": input") + " tensor index " + std::to_string(j) + " out of range (" +
             std::to_string(n_tensors) + " tensors)");
      }
      list.push_back(j);
    }
  }
  const std::uint32_t n_attrs = cur.count(where + " number of attributes", kMaxAttrs, 12);
  for (std::uint32_t k = 0; k < n_attrs; ++k) {
    std::string key = cur.string(where + " attribute name");
    if (node.attr(key)) fail(where + ": duplicate attribute '" + key + "'");
    Value v = cur.value(where + " attribute '" + key + "'");
    node.attrs.emplace_back(std::move(key), std::move(v));
  }
  return node;
}

}  // namespace
}  // namespace format
}  // namespace bnnkit
