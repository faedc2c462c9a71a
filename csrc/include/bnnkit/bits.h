// bnnkit bit conventions — the one place they are written down in C++.
// (The Python mirror is src/bnnkit/bits.py; the two must agree bit for bit.)
//
//  * Binarization: x -> +1 if x >= 0 else -1 (sign(0) = +1). NaN packs as +1 (bit 0):
//    `x < 0` is false for NaN, and that is the rule (documented, tested).
//  * Packed bit: 1 means -1, 0 means +1. So a packed bit is the float's sign bit for
//    every non-zero, non-NaN value, and -0.0 packs as +1 (it is >= 0).
//  * Layout: channels are the innermost axis (NHWC). A row of C channels becomes
//    words_for(C) little-endian 32-bit words; channel c is bit (c % 32) of word (c / 32).
//    Bits past C in the last word are 0 (= +1). Because words are little-endian, two
//    consecutive 32-bit words read as one 64-bit word keep channel order, so kernels may
//    work on 64-, 256- or 512-bit chunks when a row has the words for it.
//  * Dot product of two packed rows over K valid bits (padding bits are 0 in both, so
//    they XOR to 0 and never count): dot = K - 2 * popcount(a XOR b).
//
// Rule for instruction-set translation units (x86/*_avx2.cc, *_avx512.cc, arm/*_neon.cc):
// everything they define lives in an anonymous namespace except the kernel entry points,
// and they use no inline templates with external linkage (std::vector, std::min on
// class types, ...): the linker may otherwise keep an AVX-512 copy of a shared inline
// function and run it on a CPU without AVX-512. This header is safe: internal linkage only.
#pragma once

#include <cstddef>
#include <cstdint>

namespace bnnkit {

using word_t = std::uint32_t;                 // storage word of packed bits
constexpr int kBitsPerWord = 32;
constexpr std::size_t kTensorAlignment = 64;  // bytes; tensor data in .bnn files and arenas

// Number of 32-bit words that hold `channels` packed bits.
static inline constexpr std::int64_t words_for(std::int64_t channels) {
  return (channels + kBitsPerWord - 1) / kBitsPerWord;
}

// The bit a float packs to: 1 for x < 0 (i.e. -1), 0 otherwise (+1, including 0, -0, NaN).
static inline constexpr word_t bit_of(float x) { return x < 0.0f ? 1u : 0u; }
static inline constexpr word_t bit_of(std::int8_t x) { return x < 0 ? 1u : 0u; }

// The value a packed bit stands for.
static inline constexpr float value_of_bit(word_t bit) { return bit ? -1.0f : 1.0f; }

// dot(a, b) over k valid bits, given popcount(a XOR b).
static inline constexpr std::int32_t binary_dot(std::int32_t k, std::int32_t xor_popcount) {
  return k - 2 * xor_popcount;
}

}  // namespace bnnkit
