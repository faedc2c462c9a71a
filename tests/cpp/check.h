// A tiny header-only check helper for the C++ tests (no framework dependency):
// CHECK(cond) records a failure with file:line and keeps going; CHECK_THROWS(expr, Type)
// expects an exception; check::report() prints a summary and is main()'s exit code.
#pragma once

#include <cstdio>

namespace check {
inline int& failures() {
  static int count = 0;
  return count;
}
inline int& checks() {
  static int count = 0;
  return count;
}
inline bool record(bool ok, const char* file, int line, const char* what) {
  ++checks();
  if (!ok && ++failures() <= 50) std::fprintf(stderr, "%s:%d: CHECK failed: %s\n", file, line, what);
  return ok;
}
inline int report(const char* name) {
  std::printf("%s: %d checks, %d failures\n", name, checks(), failures());
  return failures() == 0 ? 0 : 1;
}
}  // namespace check

#define CHECK(cond) ::check::record(static_cast<bool>(cond), __FILE__, __LINE__, #cond)
#define CHECK_THROWS(expr, Type)                                            \
  do {                                                                      \
    bool thrown_ = false;                                                   \
    try {                                                                   \
      expr;                                                                 \
    } catch (const Type&) {                                                 \
      thrown_ = true;                                                       \
    }                                                                       \
    ::check::record(thrown_, __FILE__, __LINE__, "throws " #Type ": " #expr); \
  } while (0)
