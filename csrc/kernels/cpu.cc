// CPU feature detection (see bnnkit/cpu.h).
#include "bnnkit/cpu.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <cpuid.h>
#endif

namespace bnnkit {
namespace {

#if defined(__x86_64__) || defined(_M_X64)
bool bit(unsigned reg, int b) { return (reg >> b) & 1u; }

// XCR0 via xgetbv, only valid when cpuid reports OSXSAVE.
unsigned long long read_xcr0() {
  unsigned eax = 0, edx = 0;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<unsigned long long>(edx) << 32) | eax;
}

CpuFeatures detect() {
  CpuFeatures f;
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return f;
  f.popcnt = bit(ecx, 23);
  f.fma = bit(ecx, 12);
  const bool osxsave = bit(ecx, 27) && bit(ecx, 28);  // OSXSAVE and AVX
  if (osxsave) {
    const unsigned long long xcr0 = read_xcr0();
    f.os_avx = (xcr0 & 0x6) == 0x6;        // XMM | YMM state
    f.os_avx512 = (xcr0 & 0xE6) == 0xE6;   // + opmask | ZMM_Hi256 | Hi16_ZMM
  }
  if (__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) {
    f.avx2 = bit(ebx, 5);
    f.bmi2 = bit(ebx, 8);
    f.avx512f = bit(ebx, 16);
    f.avx512bw = bit(ebx, 30);
    f.avx512vl = bit(ebx, 31);
    f.avx512vpopcntdq = bit(ecx, 14);
  }
  return f;
}
#else
CpuFeatures detect() {
  CpuFeatures f;
#if defined(__aarch64__)
  f.neon = true;
#endif
  return f;
}
#endif

}  // namespace

std::string CpuFeatures::to_string() const {
  const struct { bool on; const char* name; } all[] = {
      {popcnt, "popcnt"}, {bmi2, "bmi2"}, {fma, "fma"}, {avx2, "avx2"},
      {avx512f, "avx512f"}, {avx512bw, "avx512bw"}, {avx512vl, "avx512vl"},
      {avx512vpopcntdq, "avx512vpopcntdq"}, {os_avx, "os_avx"}, {os_avx512, "os_avx512"},
      {neon, "neon"}};
  std::string out;
  for (const auto& f : all) {
    if (!f.on) continue;
    if (!out.empty()) out += ' ';
    out += f.name;
  }
  return out;
}

const CpuFeatures& cpu_features() {
  static const CpuFeatures features = detect();
  return features;
}

}  // namespace bnnkit
