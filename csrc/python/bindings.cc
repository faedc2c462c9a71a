// The Python extension bnnkit._C: the only translation unit that includes nanobind.
// Each section binds one part of the C++ core; the core itself knows nothing of Python.
#include <nanobind/nanobind.h>

#include "bnnkit/version.h"

namespace nb = nanobind;

NB_MODULE(_C, m) {
  m.doc() = "bnnkit native core (bit-packing kernels, .bnn runtime)";
  m.def("version", &bnnkit::version, "Version of the native library.");
}
