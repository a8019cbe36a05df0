// cfgen HLS: AXI4-Stream adapters for the accelerator's external ports.
//
// TDATA is the beat padded to whole bytes (AXI_BITS = ceil(BEAT_BITS/8)*8, zero above
// the beat); TKEEP/TSTRB all ones; TLAST on the last beat of every frame (output).
//
// Input TLAST resynchronisation (docs/CONTRACT.md; the RTL's cf_axis_in / cf_axis_out do
// the same): every frame handed to the units is exactly BEATS beats.
//  * TLAST before a frame's last beat ends the frame early: the rest is padded with zero
//    beats (nothing more is read for it) and the frame is flagged bad.
//  * No TLAST on a frame's last beat: the frame ends there (frames are counted; one packet
//    may carry several whole frames). A longer packet's remaining beats start the next
//    frame, which its TLAST then ends early (padded, flagged).
// axis_to_stream writes one flag per frame (1 = padded) into `flags`; stream_to_axis reads
// it with the frame and sets TUSER = 1 on the TLAST beat of a flagged frame's output.
// `reps` counts frames as handed to the units (a padded frame is one of them).
#ifndef CF_AXIS_H
#define CF_AXIS_H

#include "cf_common.h"
#include <ap_axi_sdata.h>

// Loop labels name the loops in HLS reports; g++ would flag them as unused.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-label"

namespace cf {

// The top chains them with a flag FIFO deep enough for the frames between them (a full
// one makes axis_to_stream wait at a frame end, never loses a flag).
template <unsigned BEAT_BITS, unsigned AXI_BITS, unsigned BEATS, int U_IN>
void axis_to_stream(hls::stream<ap_axiu<AXI_BITS, U_IN, 0, 0> >& in, hls::stream<ap_uint<BEAT_BITS> >& out,
                    hls::stream<ap_uint<1> >& flags, const unsigned reps) {
  static_assert(AXI_BITS % 8 == 0 && AXI_BITS >= BEAT_BITS, "AXI_BITS: whole bytes holding the beat");
  static_assert(BEATS >= 1, "BEATS: at least one beat per frame");
frames:
  for (unsigned r = 0; r < reps; r++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=1
    bool pad = false;  // the frame was ended early by TLAST: pad its remaining beats
  beats:
    for (unsigned i = 0; i < BEATS; i++) {
#pragma HLS PIPELINE II=1
      ap_uint<BEAT_BITS> beat = 0;
      if (!pad) {
        const ap_axiu<AXI_BITS, U_IN, 0, 0> v = in.read();
        beat = v.data.range(BEAT_BITS - 1, 0);
        if (v.last && i != BEATS - 1) pad = true;
      }
      out.write(beat);
    }
    flags.write(pad ? 1 : 0);
  }
}

template <unsigned BEAT_BITS, unsigned AXI_BITS, unsigned BEATS, int U_OUT>
void stream_to_axis(hls::stream<ap_uint<BEAT_BITS> >& in, hls::stream<ap_uint<1> >& flags,
                    hls::stream<ap_axiu<AXI_BITS, U_OUT, 0, 0> >& out, const unsigned reps) {
  static_assert(AXI_BITS % 8 == 0 && AXI_BITS >= BEAT_BITS, "AXI_BITS: whole bytes holding the beat");
  static_assert(U_OUT >= 1, "the output needs a TUSER bit for the padded-frame flag");
frames:
  for (unsigned r = 0; r < reps; r++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=1
  beats:
    for (unsigned i = 0; i < BEATS; i++) {
#pragma HLS PIPELINE II=1
      ap_axiu<AXI_BITS, U_OUT, 0, 0> v;
      v.data = 0;
      v.data.range(BEAT_BITS - 1, 0) = in.read();
      v.keep = -1;
      v.strb = -1;
      const bool last = (i == BEATS - 1);
      ap_uint<1> bad = 0;
      if (last) bad = flags.read();  // the flag is needed only on the frame's last beat
      v.user = bad;
      v.last = last ? 1 : 0;
      out.write(v);
    }
  }
}

}  // namespace cf

#pragma GCC diagnostic pop

#endif  // CF_AXIS_H
