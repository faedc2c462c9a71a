// The .bnn model file, format version 1 — constants, the parsed description, the loader.
//
// docs/format.md is the specification; src/bnnkit/format/spec.py and ops.py are the Python
// mirror (codes and limits must agree; a code, once assigned, is never reused). The file is
// little-endian: a 56-byte header (magic, version, counts, data section range), metadata
// key/value records, a tensor table, a node list, the graph input/output indices, then
// 64-byte aligned constant data. parse_model() validates every count, offset, size,
// string, dtype, shape, index, op, attribute and op contract against the buffer length
// before anything runs, and throws FormatError naming the part, index and name.
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace bnnkit {
namespace format {

constexpr unsigned char kMagic[8] = {0x89, 'B', 'N', 'N', '\r', '\n', 0x1a, '\n'};
constexpr std::uint32_t kFormatVersion = 1;
constexpr std::size_t kHeaderSize = 56;
constexpr std::uint64_t kAlignment = 64;
constexpr const char* kBitConvention = "bnnkit.bits.v1";

constexpr std::uint32_t kMaxMetadata = 65536;
constexpr std::uint32_t kMaxTensors = 1u << 20;
constexpr std::uint32_t kMaxNodes = 1u << 20;
constexpr std::uint32_t kMaxGraphIO = 1024;
constexpr std::uint32_t kMaxString = 65535;
constexpr std::uint32_t kMaxArray = 65536;
constexpr std::uint32_t kMaxAttrs = 256;
constexpr std::uint32_t kMaxNdim = 6;
constexpr std::int64_t kMaxDim = (std::int64_t{1} << 31) - 1;
constexpr std::int64_t kMaxElements = std::int64_t{1} << 31;
constexpr std::uint32_t kFlagConstant = 1;

enum class DType : std::uint32_t { kF32 = 1, kF16 = 2, kI8 = 3, kI32 = 4, kU8 = 5, kBits = 6 };
enum class ValueType : std::uint32_t {
  kInt = 1, kFloat = 2, kString = 3, kInts = 4, kFloats = 5, kStrings = 6
};
enum class Op : std::uint32_t {
  kQuantize = 1, kDequantize = 2, kBConv2D = 3, kBDense = 4, kBMaxPool2D = 5,
  kBXnor = 6, kBOr = 7, kBAnd = 8,
  kConv2D = 10, kDense = 11, kBatchNorm = 12, kAdd = 13, kMul = 14, kConcat = 15,
  kMaxPool2D = 16, kAvgPool2D = 17, kGlobalAvgPool = 18,
  kRelu = 20, kRelu6 = 21, kPRelu = 22, kRPRelu = 23, kDPRelu = 24, kHardSigmoid = 25,
  kSigmoid = 26, kHardTanh = 27, kReshape = 30, kFlatten = 31, kSoftmax = 32, kFakeQuant = 33,
  kPad2D = 34, kGatherChannels = 35, kGroupMean = 36, kDynamicFakeQuant = 37,
};

// Names as in docs/format.md; nullptr for an unknown code.
const char* dtype_name(std::uint32_t code);
const char* value_type_name(std::uint32_t code);
const char* op_name(std::uint32_t code);
std::string known_ops();  // "1=quantize, 2=dequantize, ..."

// Every error about a file's content (a std::invalid_argument, so bindings map it to ValueError).
class FormatError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

struct Value {
  ValueType type = ValueType::kInt;
  std::int64_t i = 0;
  double f = 0.0;
  std::string s;
  std::vector<std::int64_t> ints;
  std::vector<double> floats;
  std::vector<std::string> strings;
};

struct TensorDesc {
  std::string name;
  DType dtype = DType::kF32;
  bool constant = false;
  std::vector<std::int64_t> shape;  // logical, PyTorch order
  std::uint64_t offset = 0, nbytes = 0;
  const std::uint8_t* data = nullptr;  // constants: points into the file buffer
  std::int64_t numel() const;
};

struct NodeDesc {
  std::string name;
  Op op = Op::kRelu;
  std::vector<std::uint32_t> inputs, outputs;
  std::vector<std::pair<std::string, Value>> attrs;
  const Value* attr(const std::string& key) const;  // nullptr if absent
};

struct ModelDesc {
  std::uint32_t version = 0;
  std::vector<std::pair<std::string, Value>> metadata;
  std::vector<TensorDesc> tensors;
  std::vector<NodeDesc> nodes;
  std::vector<std::uint32_t> inputs, outputs;
};

// Bytes a constant of this dtype and logical shape occupies (bits: channels-last words).
std::uint64_t storage_nbytes(DType dtype, const std::vector<std::int64_t>& shape);
// The packed axis of a bits tensor: 1 for rank >= 2, else 0.
inline std::size_t channel_axis(std::size_t ndim) { return ndim >= 2 ? 1 : 0; }

// Parses and fully validates a file held in [data, data + size) (structure, then
// check_graph). The returned tensors point into the buffer, which must outlive them.
ModelDesc parse_model(const std::uint8_t* data, std::size_t size);
// Dataflow, op contracts, attribute values and declared shapes (graph.cc).
void check_graph(const ModelDesc& model);

}  // namespace format
}  // namespace bnnkit
