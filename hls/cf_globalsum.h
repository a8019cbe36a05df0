// cfgen HLS: global sum (global average pool without the divisor).
// in : PIX pixel beats per frame, C values of IN_BITS (signed if IN_SIGNED)
// out: one beat per frame, C sums of OUT_BITS (two's complement wrap; the IR sizes
//      OUT_BITS so that every reachable sum fits). One pixel per cycle.
#ifndef CF_GLOBALSUM_H
#define CF_GLOBALSUM_H

#include "cf_common.h"

// Loop labels name the loops in HLS reports; g++ would flag them as unused.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-label"

namespace cf {

template <unsigned C, unsigned IN_BITS, bool IN_SIGNED, unsigned PIX, unsigned OUT_BITS>
void global_sum(hls::stream<ap_uint<C * IN_BITS> >& in, hls::stream<ap_uint<C * OUT_BITS> >& out,
                const unsigned reps) {
  ap_int<OUT_BITS + 1> sum[C];
#pragma HLS ARRAY_PARTITION variable=sum complete dim=1
  for (unsigned c = 0; c < C; c++) {
#pragma HLS UNROLL
    sum[c] = 0;
  }
  unsigned p = 0;
frames:
  for (unsigned r = 0; r < reps; r++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=1
  pixels:
    for (unsigned i = 0; i < PIX; i++) {
#pragma HLS PIPELINE II=1
      const ap_uint<C * IN_BITS> x = in.read();
      ap_uint<C * OUT_BITS> y = 0;
    channels:
      for (unsigned c = 0; c < C; c++) {
#pragma HLS UNROLL
        const ap_int<OUT_BITS + 1> s0 = (p == 0) ? ap_int<OUT_BITS + 1>(0) : sum[c];
        sum[c] = s0 + channel<IN_BITS, IN_SIGNED>(x, c);
        if (p == PIX - 1) y.range(c * OUT_BITS + OUT_BITS - 1, c * OUT_BITS) = sum[c].range(OUT_BITS - 1, 0);
      }
      if (p == PIX - 1) {
        out.write(y);
        p = 0;
      } else {
        p++;
      }
    }
  }
}

}  // namespace cf

#pragma GCC diagnostic pop

#endif  // CF_GLOBALSUM_H
