// cfgen HLS: tap-parallel width converter (the HLS counterpart of rtl/cf_widen.v).
//
// widen_taps<IN_W, R, SF, NF, WINDOWS>: per window (WINDOWS per frame) R*SF narrow beats
// of IN_W bits (whole window taps from sliding_window with SIMD = C_in) in, and NF times
// over sf = 0 .. SF-1 (nf-major, sf-minor) the wide beat sf = narrow beats sf*R .. sf*R+R-1,
// the first in the lowest bits, out: R*IN_W-bit chunks of SIMD = R*C_in elements in the
// (ky, kx, c) column order mvau expects. mvau buffers a window's chunks on its first output
// fold and replays them itself, so the backend instantiates NF = 1 (a plain gather); NF > 1
// (replay, as cf_widen does for cf_mvu) holds the window in an SF-word buffer. R = 1 (row
// taps: sliding_window<..., TAPS = K> already emits m = K taps per beat) passes the beats
// through (NF = 1) or only replays them.
#ifndef CF_WIDEN_H
#define CF_WIDEN_H

#include "cf_common.h"

// Loop labels name the loops in HLS reports; g++ would flag them as unused.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-label"

namespace cf {

template <unsigned IN_W, unsigned R, unsigned SF, unsigned NF, unsigned WINDOWS>
void widen_taps(hls::stream<ap_uint<IN_W> >& in, hls::stream<ap_uint<R * IN_W> >& out, const unsigned reps) {
  static_assert(IN_W >= 1 && R >= 1 && SF >= 1 && NF >= 1, "widen_taps: sizes must be >= 1");
  constexpr unsigned OUT_W = R * IN_W;
  typedef ap_uint<OUT_W> wide_t;
  wide_t word = 0;
  unsigned j = 0;
  if (NF == 1) {
  frames:
    for (unsigned r = 0; r < reps; r++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=1
    beats:
      for (unsigned i = 0; i < WINDOWS * SF * R; i++) {
#pragma HLS PIPELINE II=1
        const ap_uint<IN_W> x = in.read();
        if (R > 1) word = word >> IN_W;  // R = 1: the beat is the whole word
        word.range(OUT_W - 1, OUT_W - IN_W) = x;
        if (++j == R) {
          out.write(word);
          j = 0;
        }
      }
    }
    return;
  }
  wide_t buf[SF];
replay_frames:
  for (unsigned r = 0; r < reps; r++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=1
  windows:
    for (unsigned w = 0; w < WINDOWS; w++) {
      unsigned sf = 0;
    collect:
      for (unsigned i = 0; i < SF * R; i++) {
#pragma HLS PIPELINE II=1
        const ap_uint<IN_W> x = in.read();
        if (R > 1) word = word >> IN_W;  // R = 1: the beat is the whole word
        word.range(OUT_W - 1, OUT_W - IN_W) = x;
        if (++j == R) {
          buf[sf++] = word;
          j = 0;
        }
      }
    replay:
      for (unsigned i = 0; i < NF * SF; i++) {
#pragma HLS PIPELINE II=1
        out.write(buf[i % SF]);
      }
    }
  }
}

}  // namespace cf

#pragma GCC diagnostic pop

#endif  // CF_WIDEN_H
