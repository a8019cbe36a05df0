// cfgen HLS: stream fork, one stream to two readers (an HLS stream has one reader; a DAG's
// stream read by two nodes, e.g. a residual block's input feeding its body and its shortcut,
// is forked). Every beat of `in` is written to both `out0` and `out1`, BEATS beats per frame,
// `reps` frames, II = 1. A write waits while either output is full, so the branch that reads
// later needs the FIFO that balances the two (the residual add's skip_depth, sized by the
// folding: the generated top gives the stream feeding the add's shortcut input that depth).
#ifndef CF_FORK_H
#define CF_FORK_H

#include "cf_common.h"

// Loop labels name the loops in HLS reports; g++ would flag them as unused.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-label"

namespace cf {

template <unsigned W, unsigned BEATS>
void fork_stream(hls::stream<ap_uint<W> >& in, hls::stream<ap_uint<W> >& out0, hls::stream<ap_uint<W> >& out1,
                 const unsigned reps) {
  static_assert(W >= 1 && BEATS >= 1, "fork_stream: W and BEATS must be >= 1");
frames:
  for (unsigned r = 0; r < reps; r++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=1
  beats:
    for (unsigned i = 0; i < BEATS; i++) {
#pragma HLS PIPELINE II=1
      const ap_uint<W> x = in.read();
      out0.write(x);
      out1.write(x);
    }
  }
}

}  // namespace cf

#pragma GCC diagnostic pop

#endif  // CF_FORK_H
