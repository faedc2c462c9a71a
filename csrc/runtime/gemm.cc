// Float GEMM for conv2d/dense: C[M x N] += A[M x K] * B[K x N] (row-major, leading dims).
//
// The portable fallback walks K in blocks of 256 and, inside a block, C in 6 x 8 register
// tiles: each step loads one 8-wide row slice of B, broadcasts 6 values of A and updates
// 48 sums in 12 vector registers that never leave them (GCC/Clang vector extension:
// SSE on x86-64, NEON on AArch64); edge rows/columns use a row-wise loop. Where a CBLAS
// is found at configure time (BNNKIT_HAVE_CBLAS with BNNKIT_CBLAS_SGEMM naming the symbol,
// e.g. scipy-openblas32's scipy_cblas_sgemm), it is used instead.
#include <algorithm>
#include <cstring>

#include "runtime/ops.h"

#if defined(BNNKIT_HAVE_CBLAS)
#include <mutex>
extern "C" void BNNKIT_CBLAS_SGEMM(int order, int transa, int transb, int m, int n, int k, float alpha,
                                   const float* a, int lda, const float* b, int ldb, float beta, float* c,
                                   int ldc);
extern "C" void BNNKIT_CBLAS_SET_THREADS(int num_threads);
#endif

namespace bnnkit {
namespace rt {
namespace {

constexpr std::int64_t kRows = 6;  // register tile: 6 rows x 8 columns = 12 vector accumulators
constexpr std::int64_t kCols = 8;
constexpr std::int64_t kDepth = 256;  // K block: the A rows and B slice of one pass stay in L1/L2

// 4-wide float vectors (GCC/Clang vector extension: SSE on x86-64, NEON on AArch64).
typedef float v4f __attribute__((vector_size(16)));

inline v4f load4(const float* p) {
  v4f v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

// C[6 x 8] += A[6 x k] * B[k x 8] with 12 vector accumulators held in registers.
void micro(std::int64_t k, const float* a, std::int64_t lda, const float* b, std::int64_t ldb, float* c,
           std::int64_t ldc) {
  v4f acc[kRows][2] = {};
  for (std::int64_t p = 0; p < k; ++p) {
    const v4f b0 = load4(b + p * ldb), b1 = load4(b + p * ldb + 4);
    for (std::int64_t r = 0; r < kRows; ++r) {
      const v4f av = v4f{} + a[r * lda + p];
      acc[r][0] += av * b0;
      acc[r][1] += av * b1;
    }
  }
  for (std::int64_t r = 0; r < kRows; ++r) {
    for (int h = 0; h < 2; ++h) {
      const v4f sum = load4(c + r * ldc + 4 * h) + acc[r][h];
      std::memcpy(c + r * ldc + 4 * h, &sum, sizeof(sum));
    }
  }
}

// Any tile (edges): C[rows x cols] += A * B, row by row, vectorized over the columns.
void edge(std::int64_t rows, std::int64_t cols, std::int64_t k, const float* a, std::int64_t lda,
          const float* b, std::int64_t ldb, float* c, std::int64_t ldc) {
  for (std::int64_t r = 0; r < rows; ++r) {
    float* cr = c + r * ldc;
    for (std::int64_t p = 0; p < k; ++p) {
      const float av = a[r * lda + p];
      const float* bp = b + p * ldb;
      for (std::int64_t j = 0; j < cols; ++j) cr[j] += av * bp[j];
    }
  }
}

}  // namespace

void sgemm_acc(std::int64_t m, std::int64_t n, std::int64_t k, const float* a, std::int64_t lda,
               const float* b, std::int64_t ldb, float* c, std::int64_t ldc) {
#if defined(BNNKIT_HAVE_CBLAS)
  // The runtime splits work over its own thread pool; each call is one thread's share.
  static std::once_flag single_threaded;
  std::call_once(single_threaded, [] { BNNKIT_CBLAS_SET_THREADS(1); });
  if (m < (1 << 30) && n < (1 << 30) && k < (1 << 30)) {
    BNNKIT_CBLAS_SGEMM(101, 111, 111, int(m), int(n), int(k), 1.0f, a, int(lda), b, int(ldb), 1.0f, c, int(ldc));
    return;
  }
#endif
  const std::int64_t m6 = m / kRows * kRows, n8 = n / kCols * kCols;
  for (std::int64_t p0 = 0; p0 < k; p0 += kDepth) {
    const std::int64_t kb = std::min(kDepth, k - p0);
    const float* ap = a + p0;
    const float* bp = b + p0 * ldb;
    for (std::int64_t i = 0; i < m6; i += kRows) {
      for (std::int64_t j = 0; j < n8; j += kCols) micro(kb, ap + i * lda, lda, bp + j, ldb, c + i * ldc + j, ldc);
      if (n8 < n) edge(kRows, n - n8, kb, ap + i * lda, lda, bp + n8, ldb, c + i * ldc + n8, ldc);
    }
    if (m6 < m) edge(m - m6, n, kb, ap + m6 * lda, lda, bp, ldb, c + m6 * ldc, ldc);
  }
}

const char* sgemm_name() {
#if defined(BNNKIT_HAVE_CBLAS)
  return "cblas";
#else
  return "portable";
#endif
}

}  // namespace rt
}  // namespace bnnkit
