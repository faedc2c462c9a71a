// CPU feature detection, done once at first use (cpuid + xgetbv on x86-64; NEON is
// architectural on AArch64). Kernel dispatch (kernels.h) asks this header which
// instruction-set paths the running CPU and operating system support; nothing in bnnkit
// is compiled for the build machine's CPU.
#pragma once

#include <string>

namespace bnnkit {

struct CpuFeatures {
  bool popcnt = false, bmi2 = false, fma = false, avx2 = false;
  bool avx512f = false, avx512bw = false, avx512vl = false, avx512vpopcntdq = false;
  bool os_avx = false;     // XCR0 has SSE+AVX state enabled (xgetbv)
  bool os_avx512 = false;  // XCR0 also has opmask + zmm state enabled
  bool neon = false;       // AArch64 Advanced SIMD

  // The AVX2 path needs avx2 + fma + bmi2 + popcnt and OS support for ymm state.
  bool has_avx2_path() const { return avx2 && fma && bmi2 && popcnt && os_avx; }
  // The AVX-512 path needs F + BW + VL + VPOPCNTDQ and OS support for zmm/opmask state.
  bool has_avx512_path() const {
    return has_avx2_path() && avx512f && avx512bw && avx512vl && avx512vpopcntdq && os_avx512;
  }
  // Space-separated names of the detected features, e.g. "popcnt bmi2 fma avx2 os_avx".
  std::string to_string() const;
};

// Features of the CPU this process runs on (detected once, thread-safe).
const CpuFeatures& cpu_features();

}  // namespace bnnkit
