// The Python extension bnnkit._C: the only translation unit that includes nanobind.
// Each section binds one part of the C++ core; the core itself knows nothing of Python.
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/tuple.h>
#include <nanobind/stl/vector.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "bnnkit/cpu.h"
#include "bnnkit/kernels.h"
#include "bnnkit/thread_pool.h"
#include "bnnkit/version.h"
#include "bnnkit/runtime.h"  // runtime section

namespace nb = nanobind;

// ---- runtime section: bnnkit._C.Interpreter (wrapped by src/bnnkit/runtime.py) ----------
#include <nanobind/ndarray.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/tuple.h>
#include <nanobind/stl/vector.h>

namespace {

using FloatIn = nb::ndarray<const float, nb::c_contig, nb::device::cpu>;
using FloatOut = nb::ndarray<float, nb::c_contig, nb::device::cpu>;

nb::list tensor_infos(const std::vector<bnnkit::TensorInfo>& infos) {
  nb::list out;
  for (const auto& t : infos) out.append(nb::make_tuple(t.name, nb::tuple(nb::cast(t.shape)), t.dtype));
  return out;
}

void bind_runtime(nb::module_& m) {
  using bnnkit::Interpreter;
  nb::class_<Interpreter>(m, "Interpreter", "A loaded, validated .bnn model ready to run.")
      .def_static("from_file", [](const std::string& path, int threads) {
            return new Interpreter(bnnkit::Model::from_file(path), threads);
          }, nb::arg("path"), nb::arg("num_threads") = 1, nb::rv_policy::take_ownership)
      .def_static("from_bytes", [](nb::bytes data, int threads) {
            return new Interpreter(bnnkit::Model::from_buffer(data.c_str(), data.size()), threads);
          }, nb::arg("data"), nb::arg("num_threads") = 1, nb::rv_policy::take_ownership)
      .def("input_info", [](const Interpreter& s) { return tensor_infos(s.inputs()); })
      .def("output_info", [](const Interpreter& s) { return tensor_infos(s.outputs()); })
      .def_prop_ro("num_threads", &Interpreter::num_threads)
      .def_prop_ro("arena_bytes", &Interpreter::arena_bytes)
      .def("set_input", [](Interpreter& s, std::size_t i, FloatIn x) { s.set_input(i, x.data(), x.size()); },
           nb::arg("index"), nb::arg("x").noconvert())
      .def("run", &Interpreter::run, nb::call_guard<nb::gil_scoped_release>())
      .def("get_output", [](const Interpreter& s, std::size_t i, FloatOut y) { s.get_output(i, y.data(), y.size()); },
           nb::arg("index"), nb::arg("out").noconvert())
      .def("profile", [](const Interpreter& s) {
        nb::list out;
        for (const auto& e : s.profile()) out.append(nb::make_tuple(e.op, e.node, e.shapes, e.kernel, e.micros));
        return out;
      });
}

}  // namespace

// ---- kernels: dispatch, bit-packing, binary conv / max-pool (bnnkit.kernels) -------------
namespace kernel_bindings {

template <typename T>
using In = nb::ndarray<const T, nb::c_contig, nb::device::cpu>;
template <typename T>
using Out = nb::ndarray<T, nb::c_contig, nb::device::cpu>;

bnnkit::KernelPath path_of(const std::string& name) {
  return name == "auto" ? bnnkit::KernelPath::kAuto : bnnkit::parse_kernel_path(name);
}

void need(bool ok, const std::string& what) {
  if (!ok) throw std::invalid_argument(what);
}

std::vector<std::string> names(const std::vector<bnnkit::KernelPath>& paths) {
  std::vector<std::string> out;
  for (auto p : paths) out.push_back(bnnkit::kernel_path_name(p));
  return out;
}

template <typename T>
void pack(In<T> x, std::int64_t rows, std::int64_t channels, Out<std::uint32_t> out,
          const std::string& path) {
  need(static_cast<std::int64_t>(x.size()) == rows * channels, "pack_bits: input size mismatch");
  need(static_cast<std::int64_t>(out.size()) == rows * bnnkit::words_for(channels),
       "pack_bits: output size mismatch");
  nb::gil_scoped_release release;
  bnnkit::pack_rows(x.data(), rows, channels, out.data(), path_of(path));
}

template <typename T>
void unpack(In<std::uint32_t> w, std::int64_t rows, std::int64_t channels, Out<T> out,
            const std::string& path) {
  need(static_cast<std::int64_t>(w.size()) == rows * bnnkit::words_for(channels),
       "unpack_bits: input size mismatch");
  need(static_cast<std::int64_t>(out.size()) == rows * channels, "unpack_bits: output size mismatch");
  nb::gil_scoped_release release;
  bnnkit::unpack_rows(w.data(), rows, channels, out.data(), path_of(path));
}

bnnkit::OutputKind kind_of(const std::string& name) {
  if (name == "float") return bnnkit::OutputKind::kFloat;
  if (name == "bits") return bnnkit::OutputKind::kBits;
  if (name == "int32") return bnnkit::OutputKind::kInt32;
  throw std::invalid_argument("unknown output kind '" + name + "'; known: float, bits, int32");
}

// shape: batch, in_h, in_w, in_channels, out_channels, kernel_h, kernel_w, stride_h,
// stride_w, dilation_h, dilation_w, pad_top, pad_bottom, pad_left, pad_right, groups.
void init_bconv(bnnkit::BConv2D* self, In<std::uint32_t> weights, std::vector<std::int64_t> v,
                bool same, int pad_value, const std::string& kind, std::vector<float> multiplier,
                std::vector<float> bias, float clamp_min, float clamp_max, std::int64_t acc_min,
                std::int64_t acc_max) {
  need(v.size() == 16, "BConv2D: shape needs 16 integers");
  bnnkit::BConv2DShape s;
  std::int64_t* fields[] = {&s.batch, &s.in_h, &s.in_w, &s.in_channels, &s.out_channels,
                            &s.kernel_h, &s.kernel_w, &s.stride_h, &s.stride_w, &s.dilation_h,
                            &s.dilation_w, &s.pad_top, &s.pad_bottom, &s.pad_left, &s.pad_right,
                            &s.groups};
  for (int i = 0; i < 16; ++i) *fields[i] = v[i];
  s.pad_value = pad_value;
  if (same) s.set_same_padding();
  s.validate();
  const std::int64_t expected = s.out_channels * s.kernel_h * s.kernel_w *
                                bnnkit::words_for(s.in_channels / s.groups);
  need(static_cast<std::int64_t>(weights.size()) == expected,
       "BConv2D: weights hold " + std::to_string(weights.size()) + " words, the shape needs " +
           std::to_string(expected));
  bnnkit::OutputTransform t;
  t.kind = kind_of(kind);
  t.multiplier = std::move(multiplier);
  t.bias = std::move(bias);
  t.clamp_min = clamp_min;
  t.clamp_max = clamp_max;
  const std::int64_t lo32 = std::numeric_limits<std::int32_t>::min(), hi32 = std::numeric_limits<std::int32_t>::max();
  t.acc_min = static_cast<std::int32_t>(std::clamp(acc_min, lo32, hi32));
  t.acc_max = static_cast<std::int32_t>(std::clamp(acc_max, lo32, hi32));
  new (self) bnnkit::BConv2D(s, weights.data(), t);
}

void run_bconv(const bnnkit::BConv2D& conv, In<std::uint32_t> input, nb::ndarray<nb::c_contig, nb::device::cpu> output,
               bnnkit::ThreadPool* pool, const std::string& path, const std::string& variant) {
  const bnnkit::BConv2DShape& s = conv.shape();
  need(static_cast<std::int64_t>(input.size()) ==
           s.batch * s.in_h * s.in_w * bnnkit::words_for(s.in_channels),
       "BConv2D.run: input size does not match the prepared shape");
  need(static_cast<std::int64_t>(output.size()) == conv.output_elements() && output.itemsize() == 4,
       "BConv2D.run: output must hold " + std::to_string(conv.output_elements()) + " 4-byte elements");
  nb::gil_scoped_release release;
  conv.run(input.data(), output.data(), pool, path_of(path), variant.empty() ? nullptr : variant.c_str());
}

void bind(nb::module_& m) {
  m.def("cpu_flags", [] { return bnnkit::cpu_features().to_string(); });
  m.def("kernel_paths", [] {
    std::vector<std::string> out;
    for (int i = 0; i < bnnkit::kNumKernelPaths; ++i)
      out.push_back(bnnkit::kernel_path_name(static_cast<bnnkit::KernelPath>(i)));
    return out;
  });
  m.def("supported_kernel_paths", [] { return names(bnnkit::supported_kernel_paths()); });
  m.def("kernel_path_unsupported_reason",
        [](const std::string& p) { return bnnkit::kernel_path_unsupported_reason(path_of(p)); });
  m.def("best_kernel_path", [] { return std::string(bnnkit::kernel_path_name(bnnkit::best_kernel_path())); });
  m.def("active_kernel_path", [] { return std::string(bnnkit::kernel_path_name(bnnkit::active_kernel_path())); });
  m.def("set_active_kernel_path", [](const std::string& p) { bnnkit::set_active_kernel_path(path_of(p)); });
  m.def("kernel_manifest", [] {
    std::vector<std::tuple<std::string, std::string, std::string, bool>> out;
    for (const auto& k : bnnkit::kernel_manifest())
      out.emplace_back(k.op, bnnkit::kernel_path_name(k.path), k.name, k.is_default);
    return out;
  });
  m.def("pack_f32", &pack<float>);
  m.def("pack_s8", &pack<std::int8_t>);
  m.def("unpack_f32", &unpack<float>);
  m.def("unpack_s8", &unpack<std::int8_t>);
  nb::class_<bnnkit::ThreadPool>(m, "ThreadPool")
      .def(nb::init<int>())
      .def_prop_ro("num_threads", &bnnkit::ThreadPool::num_threads);
  nb::class_<bnnkit::BConv2D>(m, "BConv2D")
      .def("__init__", &init_bconv)
      .def_prop_ro("output_elements", &bnnkit::BConv2D::output_elements)
      .def_prop_ro("out_hw", [](const bnnkit::BConv2D& c) {
        return std::make_pair(c.shape().out_h(), c.shape().out_w());
      })
      .def("run", &run_bconv, nb::arg("input"), nb::arg("output"), nb::arg("pool").none(),
           nb::arg("path") = "auto", nb::arg("variant") = "");
  m.def("bmaxpool2d", [](In<std::uint32_t> x, std::vector<std::int64_t> v, Out<std::uint32_t> out,
                         const std::string& path) {
    need(v.size() == 12, "bmaxpool2d: shape needs 12 integers");
    bnnkit::BMaxPoolShape s{v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10], v[11]};
    s.validate();
    need(static_cast<std::int64_t>(x.size()) == s.batch * s.in_h * s.in_w * bnnkit::words_for(s.channels),
         "bmaxpool2d: input size mismatch");
    need(static_cast<std::int64_t>(out.size()) ==
             s.batch * s.out_h() * s.out_w() * bnnkit::words_for(s.channels),
         "bmaxpool2d: output size mismatch");
    nb::gil_scoped_release release;
    bnnkit::bmaxpool2d(s, x.data(), out.data(), path_of(path));
  });
}

}  // namespace kernel_bindings


NB_MODULE(_C, m) {
  m.doc() = "bnnkit native core (bit-packing kernels, .bnn runtime)";
  m.def("version", &bnnkit::version, "Version of the native library.");
  bind_runtime(m);
  kernel_bindings::bind(m);
}
