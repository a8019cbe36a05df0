// cfgen HLS: stream width converters between pixel beats and SIMD/PE chunks.
//
// split_stream: each IN_W-bit beat -> IN_W/OUT_W beats, lowest bits first
//               (a pixel -> its channel chunks 0, 1, ...).
// join_stream : OUT_W/IN_W consecutive beats -> one beat, the first in the lowest bits
//               (PE chunks -> a pixel).
// Beat counts per frame are template parameters; `reps` frames.
#ifndef CF_DWC_H
#define CF_DWC_H

#include "cf_common.h"

// Loop labels name the loops in HLS reports; g++ would flag them as unused.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-label"

namespace cf {

template <unsigned IN_W, unsigned OUT_W, unsigned IN_BEATS>
void split_stream(hls::stream<ap_uint<IN_W> >& in, hls::stream<ap_uint<OUT_W> >& out, const unsigned reps) {
  static_assert(OUT_W >= 1 && IN_W % OUT_W == 0, "split_stream: OUT_W must divide IN_W");
  constexpr unsigned R = IN_W / OUT_W;
  ap_uint<IN_W> buf = 0;
  unsigned j = 0;
frames:
  for (unsigned r = 0; r < reps; r++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=1
  beats:
    for (unsigned i = 0; i < IN_BEATS * R; i++) {
#pragma HLS PIPELINE II=1
      if (j == 0) buf = in.read();
      out.write(ap_uint<OUT_W>(buf.range(OUT_W - 1, 0)));
      buf = buf >> OUT_W;
      j = (j + 1 == R) ? 0 : j + 1;
    }
  }
}

template <unsigned IN_W, unsigned OUT_W, unsigned OUT_BEATS>
void join_stream(hls::stream<ap_uint<IN_W> >& in, hls::stream<ap_uint<OUT_W> >& out, const unsigned reps) {
  static_assert(IN_W >= 1 && OUT_W % IN_W == 0, "join_stream: IN_W must divide OUT_W");
  constexpr unsigned R = OUT_W / IN_W;
  ap_uint<OUT_W> buf = 0;
  unsigned j = 0;
frames:
  for (unsigned r = 0; r < reps; r++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=1
  beats:
    for (unsigned i = 0; i < OUT_BEATS * R; i++) {
#pragma HLS PIPELINE II=1
      const ap_uint<IN_W> x = in.read();
      buf = buf >> IN_W;
      buf.range(OUT_W - 1, OUT_W - IN_W) = x;
      if (j + 1 == R) {
        out.write(buf);
        j = 0;
      } else {
        j++;
      }
    }
  }
}

}  // namespace cf

#pragma GCC diagnostic pop

#endif  // CF_DWC_H
