// Loader tests without Python: a hand-encoded .bnn file (docs/format.md) loads, runs and
// matches a direct computation; every truncation, bad magic, a newer version, absurd counts
// and shapes, bad offsets and thousands of random mutations are rejected with a
// FormatError (or accepted and run) — never a crash. Runs under ASan/UBSan (make test-sanitize).
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <system_error>
#include <vector>

#include "bnnkit/format.h"
#include "bnnkit/runtime.h"
#include "check.h"

using namespace bnnkit;

namespace {

// Little-endian byte writer for building files by hand.
struct Bytes {
  std::vector<std::uint8_t> b;
  template <typename T>
  void put(T v) {
    std::uint8_t raw[sizeof(T)];
    std::memcpy(raw, &v, sizeof(T));
    b.insert(b.end(), raw, raw + sizeof(T));
  }
  void str(const std::string& s) {
    put<std::uint32_t>(static_cast<std::uint32_t>(s.size()));
    b.insert(b.end(), s.begin(), s.end());
  }
  void tensor(const std::string& name, std::uint32_t dtype, bool constant, std::vector<std::int64_t> dims,
              std::uint64_t offset, std::uint64_t nbytes) {
    str(name);
    put<std::uint32_t>(dtype);
    put<std::uint32_t>(constant ? 1 : 0);
    put<std::uint32_t>(static_cast<std::uint32_t>(dims.size()));
    for (auto d : dims) put<std::int64_t>(d);
    put<std::uint64_t>(offset);
    put<std::uint64_t>(nbytes);
  }
};

// x (1,4,3,3) f32 -> quantize -> q bits -> bconv2d(w bits (2,4,3,3), pad 1, pad_value 1,
// multiplier m) -> y (1,2,3,3) f32. Weight words: O x KH x KW x 1 word (OHWI, 4 channels).
std::vector<std::uint8_t> small_file(const std::vector<std::uint32_t>& w_words, const float m[2]) {
  Bytes t;
  t.str("bnnkit.bit_convention"), t.put<std::uint32_t>(3), t.str("bnnkit.bits.v1");
  t.str("bnnkit.producer"), t.put<std::uint32_t>(3), t.str("test_loader.cc");
  t.tensor("x", 1, false, {1, 4, 3, 3}, 0, 0);
  t.tensor("q", 6, false, {1, 4, 3, 3}, 0, 0);
  t.tensor("w", 6, true, {2, 4, 3, 3}, 0, 72);
  t.tensor("m", 1, true, {2}, 128, 8);
  t.tensor("y", 1, false, {1, 2, 3, 3}, 0, 0);
  t.str("pack"), t.put<std::uint32_t>(1);  // quantize
  t.put<std::uint32_t>(1), t.put<std::uint32_t>(0), t.put<std::uint32_t>(1), t.put<std::uint32_t>(1);
  t.put<std::uint32_t>(0);
  t.str("conv"), t.put<std::uint32_t>(3);  // bconv2d
  t.put<std::uint32_t>(3), t.put<std::uint32_t>(1), t.put<std::uint32_t>(2), t.put<std::uint32_t>(3);
  t.put<std::uint32_t>(1), t.put<std::uint32_t>(4);
  t.put<std::uint32_t>(1), t.str("pad"), t.put<std::uint32_t>(4), t.put<std::uint32_t>(4);
  for (int i = 0; i < 4; ++i) t.put<std::int64_t>(1);
  t.put<std::uint32_t>(0), t.put<std::uint32_t>(4);  // graph input x, output y
  Bytes f;
  f.b = {0x89, 'B', 'N', 'N', '\r', '\n', 0x1a, '\n'};
  const std::uint64_t tables_end = format::kHeaderSize + t.b.size();
  const std::uint64_t data_offset = (tables_end + 63) / 64 * 64;
  for (std::uint32_t v : {1u, 0u, 2u, 5u, 2u, 1u, 1u, 0u}) f.put<std::uint32_t>(v);
  f.put<std::uint64_t>(data_offset);
  f.put<std::uint64_t>(136);
  f.b.insert(f.b.end(), t.b.begin(), t.b.end());
  f.b.resize(data_offset, 0);
  Bytes data;
  for (auto w : w_words) data.put<std::uint32_t>(w);
  data.b.resize(128, 0);
  data.put<float>(m[0]);
  data.put<float>(m[1]);
  f.b.insert(f.b.end(), data.b.begin(), data.b.end());
  return f.b;
}

// Direct computation of the small model: +1 padding, y = m[o] * sum x*w over the 3x3 window.
std::vector<float> expected(const std::vector<float>& x, const std::vector<std::uint32_t>& w, const float m[2]) {
  std::vector<float> y(18);
  for (int o = 0; o < 2; ++o)
    for (int r = 0; r < 3; ++r)
      for (int c = 0; c < 3; ++c) {
        int acc = 0;
        for (int ky = 0; ky < 3; ++ky)
          for (int kx = 0; kx < 3; ++kx)
            for (int ch = 0; ch < 4; ++ch) {
              const int iy = r - 1 + ky, ix = c - 1 + kx;
              const int xv = (iy < 0 || iy >= 3 || ix < 0 || ix >= 3) ? 1 : (x[(ch * 3 + iy) * 3 + ix] < 0 ? -1 : 1);
              const int wv = (w[(o * 3 + ky) * 3 + kx] >> ch) & 1u ? -1 : 1;
              acc += xv * wv;
            }
        y[(o * 3 + r) * 3 + c] = m[o] * static_cast<float>(acc);
      }
  return y;
}

// True if the buffer loads (and then runs) cleanly; false if rejected with FormatError.
bool load_or_reject(const std::vector<std::uint8_t>& buf) {
  try {
    auto model = Model::from_buffer(buf.data(), buf.size());
    Interpreter interp(model, 1);
    if (interp.arena_bytes() > (1u << 24)) return true;
    for (std::size_t i = 0; i < interp.inputs().size(); ++i) {
      std::size_t n = 1;
      for (auto d : interp.inputs()[i].shape) n *= static_cast<std::size_t>(d);
      std::vector<float> zeros(n, 0.0f);
      interp.set_input(i, zeros.data(), n);
    }
    interp.run();
    return true;
  } catch (const format::FormatError&) {
    return false;
  }
}

bool rejects(const std::vector<std::uint8_t>& buf, const char* needle) {
  try {
    Model::from_buffer(buf.data(), buf.size());
  } catch (const format::FormatError& e) {
    if (std::strstr(e.what(), needle)) return true;
    std::fprintf(stderr, "message '%s' lacks '%s'\n", e.what(), needle);
    return false;
  }
  return false;
}

template <typename T>
std::vector<std::uint8_t> patched(std::vector<std::uint8_t> buf, std::size_t pos, T v) {
  std::memcpy(buf.data() + pos, &v, sizeof(T));
  return buf;
}

std::vector<std::uint8_t> read_file(const std::string& path) {
  std::vector<std::uint8_t> out;
  if (FILE* f = std::fopen(path.c_str(), "rb")) {
    std::uint8_t chunk[4096];
    std::size_t n;
    while ((n = std::fread(chunk, 1, sizeof(chunk), f)) > 0) out.insert(out.end(), chunk, chunk + n);
    std::fclose(f);
  }
  return out;
}

std::vector<float> run_once(const std::vector<std::uint8_t>& buf, int threads) {
  Interpreter interp(Model::from_buffer(buf.data(), buf.size()), threads);
  std::vector<float> x(1 * 3 * 8 * 8);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>((i * 37) % 17) / 4.0f - 2.0f;
  interp.set_input(0, x.data(), x.size());
  interp.run();
  std::vector<float> y(4);
  interp.get_output(0, y.data(), y.size());
  return y;
}

// The checked-in golden model (float conv, batch-norm, quantize, binary convs with the fused
// and the int32-epilogue transforms, pooling, dense) runs cleanly under the sanitizers, with
// identical results on 1 and 2 threads, and its mutations load or fail cleanly.
void test_golden(std::mt19937& rng) {
  std::string path = __FILE__;
  path = path.substr(0, path.rfind("tests/cpp/")) + "tests/data/golden_small.bnn";
  const std::vector<std::uint8_t> golden = read_file(path);
  if (!CHECK(!golden.empty())) return;
  const std::vector<float> one = run_once(golden, 1), two = run_once(golden, 2);
  CHECK(one == two);
  for (float v : one) CHECK(std::isfinite(v));
  int accepted = 0;
  for (int it = 0; it < 1500; ++it) {
    std::vector<std::uint8_t> mut = golden;
    for (int e = 0; e < 2; ++e) mut[rng() % mut.size()] ^= static_cast<std::uint8_t>(1u << (rng() % 8));
    accepted += load_or_reject(mut);
  }
  std::printf("golden mutations accepted: %d of 1500\n", accepted);
}

// x (1,4,3,3) f32 -> quantize q -> gather_channels(q, index) g bits (1,n,3,3) -> dequantize y.
std::vector<std::uint8_t> gather_file(const std::vector<std::int64_t>& index) {
  const auto n = static_cast<std::int64_t>(index.size());
  Bytes t;
  t.str("bnnkit.bit_convention"), t.put<std::uint32_t>(3), t.str("bnnkit.bits.v1");
  t.str("bnnkit.producer"), t.put<std::uint32_t>(3), t.str("test_loader.cc");
  t.tensor("x", 1, false, {1, 4, 3, 3}, 0, 0);
  t.tensor("q", 6, false, {1, 4, 3, 3}, 0, 0);
  t.tensor("g", 6, false, {1, n, 3, 3}, 0, 0);
  t.tensor("y", 1, false, {1, n, 3, 3}, 0, 0);
  t.str("pack"), t.put<std::uint32_t>(1), t.put<std::uint32_t>(1), t.put<std::uint32_t>(0);
  t.put<std::uint32_t>(1), t.put<std::uint32_t>(1), t.put<std::uint32_t>(0);
  t.str("gather"), t.put<std::uint32_t>(35), t.put<std::uint32_t>(1), t.put<std::uint32_t>(1);
  t.put<std::uint32_t>(1), t.put<std::uint32_t>(2);
  t.put<std::uint32_t>(1), t.str("index"), t.put<std::uint32_t>(4), t.put<std::uint32_t>(static_cast<std::uint32_t>(n));
  for (auto v : index) t.put<std::int64_t>(v);
  t.str("unpack"), t.put<std::uint32_t>(2), t.put<std::uint32_t>(1), t.put<std::uint32_t>(2);
  t.put<std::uint32_t>(1), t.put<std::uint32_t>(3), t.put<std::uint32_t>(0);
  t.put<std::uint32_t>(0), t.put<std::uint32_t>(3);  // graph input x, output y
  Bytes f;
  f.b = {0x89, 'B', 'N', 'N', '\r', '\n', 0x1a, '\n'};
  const std::uint64_t data_offset = (format::kHeaderSize + t.b.size() + 63) / 64 * 64;
  for (std::uint32_t v : {1u, 0u, 2u, 4u, 3u, 1u, 1u, 0u}) f.put<std::uint32_t>(v);
  f.put<std::uint64_t>(data_offset);
  f.put<std::uint64_t>(0);
  f.b.insert(f.b.end(), t.b.begin(), t.b.end());
  f.b.resize(data_offset, 0);
  return f.b;
}

// gather_channels on bits: a valid permutation runs and moves the signs; an index past the
// channels or a zero (-1) channel in a bits output is rejected with the entry named.
void test_gather_channels() {
  const std::vector<std::uint8_t> good = gather_file({3, 0, 0});
  Interpreter interp(Model::from_buffer(good.data(), good.size()), 1);
  std::vector<float> x(36), y(27);
  for (int i = 0; i < 36; ++i) x[i] = static_cast<float>((i * 5) % 7) - 3.0f;
  interp.set_input(0, x.data(), 36);
  interp.run();
  interp.get_output(0, y.data(), 27);
  const int src[3] = {3, 0, 0};
  bool same = true;
  for (int j = 0; j < 3; ++j)
    for (int p = 0; p < 9; ++p) same = same && y[j * 9 + p] == (x[src[j] * 9 + p] < 0 ? -1.0f : 1.0f);
  CHECK(same);
  CHECK(rejects(gather_file({0, 4}), "index entry 1 is 4, outside [0, 4)"));
  CHECK(rejects(gather_file({-1}), "(a bits output has no zero channel)"));
}

}  // namespace

int main() {
  const std::vector<std::uint32_t> w = {0x1, 0x0, 0xF, 0x6, 0x9, 0x3, 0x0, 0x5, 0x8, 0xA, 0x2, 0x4, 0xE, 0x7, 0x1, 0xB, 0x0, 0xC};
  const float m[2] = {0.5f, -2.0f};
  const std::vector<std::uint8_t> good = small_file(w, m);

  // A valid file loads, runs and matches the direct computation.
  auto model = Model::from_buffer(good.data(), good.size());
  CHECK(model->desc().tensors.size() == 5 && model->desc().nodes.size() == 2);
  Interpreter interp(model, 2);
  CHECK_THROWS(interp.run(), std::runtime_error);  // input not set
  std::vector<float> x(36), y(18);
  for (int i = 0; i < 36; ++i) x[i] = static_cast<float>((i * 7) % 11) - 5.0f;
  CHECK_THROWS(interp.set_input(0, x.data(), 35), std::invalid_argument);
  CHECK_THROWS(interp.get_output(0, y.data(), 18), std::runtime_error);  // before run
  interp.set_input(0, x.data(), 36);
  interp.run();
  interp.get_output(0, y.data(), 18);
  CHECK(y == expected(x, w, m));
  CHECK(interp.profile().size() == 2 && interp.profile()[1].op == "bconv2d");

  // From a file (mmap), and a missing file.
  const std::string path = "test_loader_small.bnn";
  if (FILE* f = std::fopen(path.c_str(), "wb")) {
    std::fwrite(good.data(), 1, good.size(), f);
    std::fclose(f);
    CHECK(Model::from_file(path)->desc().inputs.size() == 1);
    std::remove(path.c_str());
  }
  CHECK_THROWS(Model::from_file("/nonexistent/dir/x.bnn"), std::system_error);
  CHECK_THROWS(Model::from_buffer(nullptr, 0), format::FormatError);

  // Every truncation is rejected.
  for (std::size_t n = 0; n < good.size(); ++n) {
    std::vector<std::uint8_t> cut(good.begin(), good.begin() + static_cast<long>(n));
    CHECK_THROWS(Model::from_buffer(cut.data(), cut.size()), format::FormatError);
  }

  // Named corruptions give messages naming the problem.
  CHECK(rejects(patched<std::uint8_t>(good, 1, 'X'), "bad magic"));
  CHECK(rejects(patched<std::uint32_t>(good, 8, 9), "format version 9 is newer than this runtime supports (1)"));
  CHECK(rejects(patched<std::uint32_t>(good, 20, 0xFFFFFFFFu), "header n_tensors 4294967295 outside"));
  CHECK(rejects(patched<std::uint32_t>(good, 20, 1000), "n_tensors 1000 exceeds the remaining file size"));
  CHECK(rejects(patched<std::uint32_t>(good, 24, 60000), "n_nodes 60000 exceeds the remaining file size"));
  CHECK(rejects(patched<std::uint64_t>(good, 40, ~std::uint64_t{63}), "data_offset"));
  CHECK(rejects(patched<std::uint64_t>(good, 48, ~std::uint64_t{0}), "file size"));
  const std::size_t tables = format::kHeaderSize + 4 + 21 + 4 + 4 + 14 + 4 + 15 + 4 + 4 + 14;  // first tensor record
  CHECK(rejects(patched<std::int64_t>(good, tables + 4 + 1 + 12, std::int64_t{1} << 40), "has a dim outside"));
  CHECK(rejects(patched<std::uint32_t>(good, tables + 4 + 1, 42), "unknown dtype code 42"));
  std::vector<std::uint8_t> buf = good;  // weight offset (tensor 'w') past the end
  const std::size_t w_rec = tables + (4 + 1 + 12 + 32 + 16) * 2;
  CHECK(rejects(patched<std::uint64_t>(buf, w_rec + 4 + 1 + 12 + 32, std::uint64_t{1} << 62), "past the end"));
  CHECK(rejects(patched<std::uint64_t>(buf, w_rec + 4 + 1 + 12 + 32, 8), "is not a multiple of 64"));

  // Random mutations (bit flips, interesting words, cuts): load cleanly or reject cleanly.
  std::mt19937 rng(42);
  const std::uint32_t interesting[] = {0, 1, 3, 4, 6, 63, 64, 0x7FFFFFFF, 0x80000000u, 0xFFFFFFFFu};
  int accepted = 0;
  for (int it = 0; it < 4000; ++it) {
    std::vector<std::uint8_t> mut = good;
    const int edits = 1 + static_cast<int>(rng() % 3);
    for (int e = 0; e < edits; ++e) {
      const std::size_t pos = rng() % mut.size();
      switch (rng() % 3) {
        case 0: mut[pos] ^= static_cast<std::uint8_t>(1u << (rng() % 8)); break;
        case 1: if (pos + 4 <= mut.size()) { const std::uint32_t v = interesting[rng() % 10]; std::memcpy(&mut[pos], &v, 4); } break;
        default: mut.resize(pos); break;
      }
      if (mut.empty()) break;
    }
    accepted += load_or_reject(mut);
  }
  CHECK(accepted > 0 && accepted < 4000);
  std::printf("random mutations accepted: %d of 4000\n", accepted);
  test_golden(rng);
  test_gather_channels();
  return check::report("test_loader");
}
