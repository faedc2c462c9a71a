// Kernel tests: every supported path and every manifest variant against the reference,
// on sizes around word and tile edges. Integer results and packed bits must be identical;
// float outputs within a small tolerance; 1 and 2 threads identical.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <mutex>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "bnnkit/cpu.h"
#include "bnnkit/kernels.h"
#include "bnnkit/thread_pool.h"
#include "check.h"

using namespace bnnkit;

namespace {

std::mt19937 rng(1234);

std::vector<word_t> random_words(std::int64_t rows, std::int64_t channels) {
  const std::int64_t words = words_for(channels);
  std::vector<word_t> out(rows * words);
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t w = 0; w < words; ++w) {
      word_t v = static_cast<word_t>(rng());
      const std::int64_t valid = channels - 32 * w;
      if (valid < 32) v &= (1u << valid) - 1u;  // padding bits stay 0
      out[r * words + w] = v;
    }
  return out;
}

const std::int64_t kChannels[] = {1, 31, 32, 33, 63, 64, 65, 127, 128, 129, 255, 256, 257, 511, 512, 513};

void test_pack(KernelPath path) {
  const float specials[] = {0.0f, -0.0f, NAN, -NAN, INFINITY, -INFINITY, 1e-30f, -1e-30f};
  for (std::int64_t c : kChannels)
    for (std::int64_t rows : {1, 3}) {
      std::vector<float> x(rows * c);
      std::vector<std::int8_t> x8(rows * c);
      std::normal_distribution<float> normal;
      for (std::size_t i = 0; i < x.size(); ++i) {
        x[i] = (i % 5 == 0) ? specials[i % 8] : normal(rng);
        x8[i] = static_cast<std::int8_t>(static_cast<int>(rng() % 256) - 128);
      }
      const std::int64_t words = rows * words_for(c);
      std::vector<word_t> want(words), got(words, 0xDEADBEEF), want8(words), got8(words, 7);
      pack_rows(x.data(), rows, c, want.data(), KernelPath::kReference);
      pack_rows(x.data(), rows, c, got.data(), path);
      pack_rows(x8.data(), rows, c, want8.data(), KernelPath::kReference);
      pack_rows(x8.data(), rows, c, got8.data(), path);
      CHECK(want == got);
      CHECK(want8 == got8);
      std::vector<float> back(rows * c, 0.0f), back_ref(rows * c, 5.0f);
      std::vector<std::int8_t> back8(rows * c, 0);
      unpack_rows(got.data(), rows, c, back.data(), path);
      unpack_rows(got.data(), rows, c, back_ref.data(), KernelPath::kReference);
      unpack_rows(got8.data(), rows, c, back8.data(), path);
      CHECK(std::memcmp(back.data(), back_ref.data(), back.size() * 4) == 0);
      bool ok = true;
      for (std::size_t i = 0; i < x.size(); ++i) {
        ok &= back[i] == (x[i] < 0 ? -1.0f : 1.0f);
        ok &= back8[i] == (x8[i] < 0 ? -1 : 1);
      }
      CHECK(ok);
    }
}

void test_bgemm_variants() {
  std::vector<std::uint64_t> a(7 * 40), w(9 * 40);
  for (auto& v : a) v = (std::uint64_t(rng()) << 32) | rng();
  for (auto& v : w) v = (std::uint64_t(rng()) << 32) | rng();
  BConv2DShape s = BConv2DShape::dense(7, 40 * 64, 9);
  for (const KernelInfo& info : kernel_manifest()) {
    const std::string op = info.op;
    if ((op != "bgemm" && op != "bgemm_o8") || !kernel_path_supported(info.path)) continue;
    // Drive the variant through a dense layer with k64 = 1..40 words.
    for (std::int64_t k64 : {1, 2, 3, 4, 5, 8, 9, 31, 33, 40}) {
      s.in_channels = k64 * 64;
      std::vector<word_t> x(7 * k64 * 2), wt(9 * k64 * 2);
      for (std::int64_t i = 0; i < 7; ++i) std::memcpy(&x[i * k64 * 2], &a[i * 40], k64 * 8);
      for (std::int64_t j = 0; j < 9; ++j) std::memcpy(&wt[j * k64 * 2], &w[j * 40], k64 * 8);
      OutputTransform t;
      t.kind = OutputKind::kInt32;
      BConv2D conv(s, wt.data(), t);
      std::vector<std::int32_t> want(7 * 9), got(7 * 9, -999);
      conv.run(x.data(), want.data(), nullptr, KernelPath::kReference);
      conv.run(x.data(), got.data(), nullptr, info.path, info.name);
      if (!CHECK(want == got)) std::fprintf(stderr, "  variant %s k64=%ld\n", info.name, long(k64));
    }
  }
}

struct ConvCase {
  std::int64_t cin, cout, k, stride, dil, groups;
  int pad_value;
  bool same;
  std::int64_t hw;
};

void test_conv_case(const ConvCase& cc, KernelPath path, ThreadPool& two) {
  BConv2DShape s;
  s.batch = 2;
  s.in_h = cc.hw;
  s.in_w = cc.hw + 1;
  s.in_channels = cc.cin;
  s.out_channels = cc.cout;
  s.kernel_h = s.kernel_w = cc.k;
  s.stride_h = s.stride_w = cc.stride;
  s.dilation_h = s.dilation_w = cc.dil;
  s.groups = cc.groups;
  s.pad_value = cc.pad_value;
  if (cc.same) s.set_same_padding();
  const auto x = random_words(s.batch * s.in_h * s.in_w, cc.cin);
  const auto w = random_words(cc.cout * cc.k * cc.k, cc.cin / cc.groups);
  OutputTransform t;
  std::normal_distribution<float> normal;
  for (std::int64_t o = 0; o < cc.cout; ++o) {
    const int kind = o % 5;  // positive, negative, zero multipliers
    t.multiplier.push_back(kind == 0 ? 0.0f : (kind == 1 ? -0.5f : 0.25f + std::fabs(normal(rng))));
    t.bias.push_back(normal(rng) * 3);
  }
  t.clamp_min = -2.0f;
  t.clamp_max = 6.0f;
  const std::string where = std::string(kernel_path_name(path)) + " cin=" + std::to_string(cc.cin) +
                            " cout=" + std::to_string(cc.cout) + " k=" + std::to_string(cc.k) +
                            " s=" + std::to_string(cc.stride) + " d=" + std::to_string(cc.dil) +
                            " g=" + std::to_string(cc.groups) + " pad=" + std::to_string(cc.pad_value);
  for (OutputKind kind : {OutputKind::kInt32, OutputKind::kBits, OutputKind::kFloat}) {
    t.kind = kind;
    BConv2D conv(s, w.data(), t);
    const std::int64_t n = conv.output_elements();
    std::vector<std::uint32_t> want(n), one(n, 0xAAAAAAAA), two_out(n, 0x55555555);
    conv.run(x.data(), want.data(), nullptr, KernelPath::kReference);
    conv.run(x.data(), one.data(), nullptr, path);
    conv.run(x.data(), two_out.data(), &two, path);
    bool ok = one == two_out;
    if (kind == OutputKind::kFloat) {
      for (std::int64_t i = 0; i < n; ++i) {
        float a, b;
        std::memcpy(&a, &want[i], 4);
        std::memcpy(&b, &one[i], 4);
        ok &= std::fabs(a - b) <= 1e-5f * (1 + std::fabs(a));
      }
    } else {
      ok &= want == one;
    }
    if (!CHECK(ok)) std::fprintf(stderr, "  %s kind=%d\n", where.c_str(), int(kind));
  }
}

void test_conv(KernelPath path, ThreadPool& two) {
  const ConvCase cases[] = {
      {1, 1, 1, 1, 1, 1, 1, false, 3},   {31, 3, 3, 1, 1, 1, 1, true, 5},
      {32, 8, 3, 1, 1, 1, 0, true, 5},   {33, 17, 3, 2, 1, 1, 0, true, 6},
      {63, 8, 5, 1, 2, 1, 1, true, 7},   {64, 64, 3, 1, 1, 1, 1, true, 6},
      {65, 17, 3, 2, 2, 1, 0, false, 9}, {128, 8, 1, 2, 1, 1, 0, false, 5},
      {64, 8, 3, 1, 1, 2, 0, true, 5},   {66, 6, 3, 1, 1, 2, 1, true, 4},
      {128, 64, 3, 1, 1, 2, 1, true, 4}, {256, 33, 3, 1, 1, 1, 0, true, 3},
      {2500, 5, 1, 1, 1, 1, 1, false, 2},  // > 31 AVX2 chunks: byte counters flushed
      // Above the one-thread work threshold (2 x 16 x 17 pixels x 64 x 9 words): several
      // pixel chunks claimed by both threads; also 2 groups and odd pixel counts.
      {64, 64, 3, 1, 1, 1, 0, true, 16}, {128, 96, 3, 2, 1, 2, 1, true, 23},
      // Rows wide enough (>= 24 interior columns) to be read in place, where the AVX-512
      // GEMM applies the output transform in the tile: partial channel tiles (40, 36),
      // zero-padding corrections, stride 2, and the flat 1x1 case.
      {64, 40, 3, 1, 1, 1, 0, true, 25}, {64, 36, 3, 1, 1, 1, 1, true, 25},
      {64, 40, 3, 2, 1, 1, 0, true, 51}, {64, 33, 1, 1, 1, 1, 1, false, 7},
  };
  for (const ConvCase& cc : cases) test_conv_case(cc, path, two);
}

// Oracle-free closed forms: all-zero input and weights give d = K (pad +1) everywhere.
void test_closed_forms() {
  BConv2DShape s;
  s.in_h = s.in_w = 4;
  s.in_channels = 40;
  s.out_channels = 3;
  s.kernel_h = s.kernel_w = 3;
  s.set_same_padding();
  std::vector<word_t> x(16 * 2, 0), w(3 * 9 * 2, 0);
  OutputTransform t;
  t.kind = OutputKind::kInt32;
  for (int pad : {1, 0}) {
    s.pad_value = pad;
    BConv2D conv(s, w.data(), t);
    std::vector<std::int32_t> y(16 * 3);
    conv.run(x.data(), y.data());
    // pad 0: corner pixels see 4 of 9 taps, edges 6, interior 9 (times 40 channels).
    CHECK(y[0] == (pad ? 360 : 160));
    CHECK(y[3 * 1] == (pad ? 360 : 240));
    CHECK(y[3 * 5] == 360);
  }
}

void test_bad_input() {
  CHECK_THROWS(parse_kernel_path("sse9"), std::invalid_argument);
  BConv2DShape s;
  s.in_channels = 3;
  s.groups = 2;
  std::vector<word_t> w(4, 0);
  CHECK_THROWS(BConv2D(s, w.data(), OutputTransform()), std::invalid_argument);
  s.groups = 1;
  s.pad_value = -1;
  CHECK_THROWS(BConv2D(s, w.data(), OutputTransform()), std::invalid_argument);
  s.pad_value = 1;
  OutputTransform t;
  t.multiplier = {1.0f, 2.0f};
  CHECK_THROWS(BConv2D(s, w.data(), t), std::invalid_argument);
  t.multiplier = {NAN};
  CHECK_THROWS(BConv2D(s, w.data(), t), std::invalid_argument);
  for (int i = 0; i < kNumKernelPaths; ++i) {
    const KernelPath p = static_cast<KernelPath>(i);
    if (!kernel_path_supported(p)) CHECK_THROWS(set_active_kernel_path(p), std::runtime_error);
  }
}

void test_maxpool(KernelPath path) {
  for (std::int64_t c : {1, 33, 64, 100}) {
    BMaxPoolShape s;
    s.batch = 2;
    s.in_h = 5;
    s.in_w = 6;
    s.channels = c;
    s.kernel_h = s.kernel_w = 3;
    s.stride_h = s.stride_w = 2;
    s.pad_top = s.pad_left = s.pad_bottom = s.pad_right = 1;
    const auto x = random_words(2 * 5 * 6, c);
    const std::int64_t n = 2 * s.out_h() * s.out_w() * words_for(c);
    std::vector<word_t> want(n), got(n, 1);
    bmaxpool2d(s, x.data(), want.data(), KernelPath::kReference);
    bmaxpool2d(s, x.data(), got.data(), path);
    CHECK(want == got);
  }
}

// Every index visited exactly once, for any n vs thread count; errors reach the caller.
void test_thread_pool() {
  ThreadPool three(3);
  for (std::int64_t n : {1, 2, 3, 7, 1000}) {
    std::vector<int> seen(n, 0);
    three.parallel_for(n, [&](std::int64_t b, std::int64_t e) {
      for (std::int64_t i = b; i < e; ++i) ++seen[i];
    });
    CHECK(seen == std::vector<int>(n, 1));
  }
  // With explicit parts: exactly the ranges [n*p/parts, n*(p+1)/parts), each run once.
  for (std::int64_t parts : {2, 5, 64, 5000}) {
    const std::int64_t n = 1000, used = std::min(n, parts);
    std::vector<int> begins(n + 1, 0);
    std::mutex m;
    three.parallel_for(n, [&](std::int64_t b, std::int64_t e) {
      std::lock_guard<std::mutex> lock(m);
      ++begins[b];
      CHECK(e <= n);
    }, parts);
    std::vector<int> want(n + 1, 0);
    for (std::int64_t p = 0; p < used; ++p) ++want[n * p / used];
    CHECK(begins == want);
  }
  CHECK_THROWS(three.parallel_for(6, [](std::int64_t b, std::int64_t) {
                 if (b > 0) throw std::runtime_error("worker failed");
               }),
               std::runtime_error);
  CHECK_THROWS(ThreadPool(0), std::invalid_argument);
}

}  // namespace

int main() {
  std::printf("cpu: %s\n", cpu_features().to_string().c_str());
  ThreadPool two(2);
  CHECK(two.num_threads() == 2);
  for (KernelPath path : supported_kernel_paths()) {
    std::printf("path %s\n", kernel_path_name(path));
    test_pack(path);
    test_conv(path, two);
    test_maxpool(path);
  }
  test_bgemm_variants();
  test_thread_pool();
  test_closed_forms();
  test_bad_input();
  return check::report("test_kernels");
}
