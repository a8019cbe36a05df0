// cfgen HLS: AXI4-Stream adapters for the accelerator's external ports.
//
// TDATA is the beat padded to whole bytes (AXI_BITS = ceil(BEAT_BITS/8)*8, zero above
// the beat); TKEEP/TSTRB all ones; TLAST on the last beat of every frame (output).
// The input adapter ignores TLAST: frames are counted (BEATS per frame, `reps` frames).
#ifndef CF_AXIS_H
#define CF_AXIS_H

#include "cf_common.h"
#include <ap_axi_sdata.h>

// Loop labels name the loops in HLS reports; g++ would flag them as unused.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-label"

namespace cf {

template <unsigned BEAT_BITS, unsigned AXI_BITS, unsigned BEATS>
void axis_to_stream(hls::stream<ap_axiu<AXI_BITS, 0, 0, 0> >& in, hls::stream<ap_uint<BEAT_BITS> >& out,
                    const unsigned reps) {
  static_assert(AXI_BITS % 8 == 0 && AXI_BITS >= BEAT_BITS, "AXI_BITS: whole bytes holding the beat");
frames:
  for (unsigned r = 0; r < reps; r++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=1
  beats:
    for (unsigned i = 0; i < BEATS; i++) {
#pragma HLS PIPELINE II=1
      const ap_axiu<AXI_BITS, 0, 0, 0> v = in.read();
      out.write(ap_uint<BEAT_BITS>(v.data.range(BEAT_BITS - 1, 0)));
    }
  }
}

template <unsigned BEAT_BITS, unsigned AXI_BITS, unsigned BEATS>
void stream_to_axis(hls::stream<ap_uint<BEAT_BITS> >& in, hls::stream<ap_axiu<AXI_BITS, 0, 0, 0> >& out,
                    const unsigned reps) {
  static_assert(AXI_BITS % 8 == 0 && AXI_BITS >= BEAT_BITS, "AXI_BITS: whole bytes holding the beat");
frames:
  for (unsigned r = 0; r < reps; r++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=1
  beats:
    for (unsigned i = 0; i < BEATS; i++) {
#pragma HLS PIPELINE II=1
      ap_axiu<AXI_BITS, 0, 0, 0> v;
      v.data = 0;
      v.data.range(BEAT_BITS - 1, 0) = in.read();
      v.keep = -1;
      v.strb = -1;
      v.last = (i == BEATS - 1) ? 1 : 0;
      out.write(v);
    }
  }
}

}  // namespace cf

#pragma GCC diagnostic pop

#endif  // CF_AXIS_H
