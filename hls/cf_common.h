// cfgen HLS header library: common types and helpers.
//
// Conventions shared by every unit (see docs/HLS.md):
//  * Streams carry bit-packed ap_uint words: a pixel beat holds channel c at bits
//    [c*B, (c+1)*B) (B = bits per value); a SIMD/PE chunk holds SIMD (PE) consecutive
//    channels the same way, lowest channel in the lowest bits.
//  * Sizes, foldings and widths are template parameters (compile time); every unit takes
//    a runtime `reps` = number of frames to process.
//  * Constant parameters (weights, thresholds, scales, offsets) live in plain integer
//    ROM words (cf::rom<W>::type, cf::srom<W>::type): bit-packed, POD, so that huge
//    tables compile fast with g++ and map to ROMs in HLS. cf::rom_reader<W>::get()
//    turns a word into ap_uint<W>.
//  * No dynamic memory, no recursion: all storage has static size.
#ifndef CF_COMMON_H
#define CF_COMMON_H

// g++ >= 12 reports false -W(maybe-)uninitialized / -Waggressive-loop-optimizations warnings from code
// inlined out of the open ap_types headers; they are silenced for those headers only.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Waggressive-loop-optimizations"
#include <ap_int.h>
#pragma GCC diagnostic pop
#include <hls_stream.h>
#include <stdint.h>
#include <type_traits>

// CF_SIM_FAST: C simulation may use host-integer shortcuts for pure bit extraction and
// popcount (identical results, several times faster than ap_private). Synthesis never
// sees them; -DCF_SYNTH_PATHS compiles the synthesis code paths in C simulation too (the
// unit tests run both).
#if !defined(__SYNTHESIS__) && !defined(CF_SYNTH_PATHS)
#define CF_SIM_FAST 1
#endif

namespace cf {

// ---------------------------------------------------------------- compile-time math
constexpr unsigned cmax(unsigned a, unsigned b) { return a > b ? a : b; }
constexpr unsigned cmin(unsigned a, unsigned b) { return a < b ? a : b; }
constexpr unsigned cdiv(unsigned a, unsigned b) { return (a + b - 1) / b; }
// Bits of an unsigned number holding 0..v.
constexpr unsigned ubits(unsigned long long v) {
  unsigned b = 1;
  while (b < 64 && (v >> b)) b++;
  return b;
}

// ---------------------------------------------------------------- value types
// val<B, S>::type: one channel value (ap_int<B> if S, else ap_uint<B>).
template <unsigned B, bool S> struct val { typedef ap_uint<B> type; };
template <unsigned B> struct val<B, true> { typedef ap_int<B> type; };

// ---------------------------------------------------------------- ROM words
// Wide ROM word: W > 64 bits as little-endian 64-bit limbs (limb 0 = bits 63..0).
template <unsigned NW> struct wide_word { uint64_t w[NW]; };

// rom<W>::type: smallest unsigned C integer holding W bits (a wide_word above 64).
template <unsigned W> struct rom {
  typedef typename std::conditional<
      (W <= 8), uint8_t,
      typename std::conditional<
          (W <= 16), uint16_t,
          typename std::conditional<
              (W <= 32), uint32_t,
              typename std::conditional<(W <= 64), uint64_t, wide_word<(W + 63) / 64> >::type>::type>::type>::type
      type;
};
// srom<W>::type: smallest signed C integer holding a W-bit two's complement value.
template <unsigned W> struct srom {
  static_assert(W >= 1 && W <= 64, "signed ROM values are limited to 64 bits");
  typedef typename std::conditional<
      (W <= 8), int8_t,
      typename std::conditional<(W <= 16), int16_t,
                                typename std::conditional<(W <= 32), int32_t, int64_t>::type>::type>::type type;
};

template <unsigned W, bool WIDE = (W > 64)> struct rom_reader {
  static ap_uint<W> get(const typename rom<W>::type& v) { return ap_uint<W>(v); }
};
template <unsigned W> struct rom_reader<W, true> {
  static ap_uint<W> get(const typename rom<W>::type& v) {
#pragma HLS INLINE
    constexpr int NW = (W + 63) / 64;
    ap_uint<W> r = v.w[NW - 1];
    for (int i = NW - 2; i >= 0; i--) {
#pragma HLS UNROLL
      r <<= 64;
      r |= ap_uint<W>(v.w[i]);
    }
    return r;
  }
};
template <unsigned W> inline ap_int<W> srom_get(const typename srom<W>::type v) { return ap_int<W>(v); }

// ---------------------------------------------------------------- bit helpers
// Channel c of a packed word (B bits per channel).
template <unsigned B, bool S, int N>
inline typename val<B, S>::type channel(const ap_uint<N>& x, const unsigned c) {
#pragma HLS INLINE
#ifdef CF_SIM_FAST
  if (N <= 64) {
    const unsigned long long v = (unsigned long long)x.to_uint64() >> (c * B);
    return typename val<B, S>::type(ap_uint<B>(B >= 64 ? v : (v & ((1ull << (B % 64)) - 1))));
  }
#endif
  return typename val<B, S>::type(x.range(c * B + B - 1, c * B));
}

// Population count as an adder tree (what synthesis builds).
template <unsigned N> inline ap_uint<ubits(N)> popcount_tree(const ap_uint<N>& x) {
#pragma HLS INLINE
  ap_uint<ubits(N)> c = 0;
  for (unsigned i = 0; i < N; i++) {
#pragma HLS UNROLL
    c += x[i];
  }
  return c;
}

// Population count; C simulation uses the host's popcount instruction on 64-bit limbs
// (unit-tested against popcount_tree, the synthesis path).
template <unsigned N> inline ap_uint<ubits(N)> popcount(const ap_uint<N>& x) {
#pragma HLS INLINE
#ifdef CF_SIM_FAST
  unsigned c = (unsigned)__builtin_popcountll((unsigned long long)x.to_uint64());
  if (N > 64) {
    ap_uint<N> t = x;
    for (unsigned lo = 64; lo < N; lo += 64) {
      t >>= 64;
      c += (unsigned)__builtin_popcountll((unsigned long long)t.to_uint64());
    }
  }
  return ap_uint<ubits(N)>(c);
#else
  return popcount_tree<N>(x);
#endif
}

// ---------------------------------------------------------------- C-simulation trace tap
#ifndef __SYNTHESIS__
// C simulation only: copy the `beats` beats that a (finished) producer left in `s` into
// `trace`, leaving `s` unchanged (C simulation runs dataflow processes one after the
// other on unbounded streams). Used by generated tops compiled with -DCF_TRACE.
template <typename T> void sim_tap(hls::stream<T>& s, hls::stream<T>& trace, const unsigned long beats) {
  for (unsigned long i = 0; i < beats; i++) {
    const T v = s.read();
    trace.write(v);
    s.write(v);
  }
}
#endif

}  // namespace cf

#endif  // CF_COMMON_H
