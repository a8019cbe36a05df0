// cfgen HLS: pooling reductions. Both consume the window taps of a sliding_window with
// SIMD = C (one whole pixel per beat, K*K beats per output pixel), i.e. one pixel per
// cycle, and emit one pixel per output pixel.
//
// maxpool_bin : binary max-pool. out = invert XOR OR_taps(tap XOR invert): OR per channel,
//               AND where invert[c] = 1. Feed the sliding window pad_pixel = invert so
//               out-of-image taps are the identity (ignored).
// avgpool_thr : average-pool sum S[c] = sum_taps x[c] (SUM_BITS two's complement; feed
//               pad_pixel = 0 so out-of-image taps add 0), then a per-channel activation
//               (ThresholdAct<C, 1, TB>: bit = S >= thr or S <= thr).
#ifndef CF_POOL_H
#define CF_POOL_H

#include "cf_activation.h"
#include "cf_common.h"

// Loop labels name the loops in HLS reports; g++ would flag them as unused.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-label"

namespace cf {

template <unsigned C, unsigned K, unsigned OPIX>
void maxpool_bin(hls::stream<ap_uint<C> >& in, hls::stream<ap_uint<C> >& out, const typename rom<C>::type& invert,
                 const unsigned reps) {
  const ap_uint<C> inv = rom_reader<C>::get(invert);
  ap_uint<C> acc = 0;
  unsigned t = 0;
frames:
  for (unsigned r = 0; r < reps; r++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=1
  taps:
    for (unsigned i = 0; i < OPIX * K * K; i++) {
#pragma HLS PIPELINE II=1
      const ap_uint<C> x = in.read() ^ inv;
      acc = (t == 0) ? x : ap_uint<C>(acc | x);
      if (t == K * K - 1) {
        out.write(acc ^ inv);
        t = 0;
      } else {
        t++;
      }
    }
  }
}

template <unsigned C, unsigned IN_BITS, bool IN_SIGNED, unsigned K, unsigned OPIX, unsigned SUM_BITS, class Act>
void avgpool_thr(hls::stream<ap_uint<C * IN_BITS> >& in, hls::stream<ap_uint<C * Act::OBITS> >& out, const Act& act,
                 const unsigned reps) {
  constexpr unsigned OB = Act::OBITS;
  ap_int<SUM_BITS> sum[C];
#pragma HLS ARRAY_PARTITION variable=sum complete dim=1
  for (unsigned c = 0; c < C; c++) {
#pragma HLS UNROLL
    sum[c] = 0;
  }
  unsigned t = 0;
frames:
  for (unsigned r = 0; r < reps; r++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=1
  taps:
    for (unsigned i = 0; i < OPIX * K * K; i++) {
#pragma HLS PIPELINE II=1
      const ap_uint<C * IN_BITS> x = in.read();
      ap_uint<C * OB> y = 0;
    channels:
      for (unsigned c = 0; c < C; c++) {
#pragma HLS UNROLL
        const ap_int<SUM_BITS> s0 = (t == 0) ? ap_int<SUM_BITS>(0) : sum[c];
        sum[c] = s0 + channel<IN_BITS, IN_SIGNED>(x, c);
        if (t == K * K - 1) y.range(c * OB + OB - 1, c * OB) = act.activate(0, c, sum[c]);
      }
      if (t == K * K - 1) {
        out.write(y);
        t = 0;
      } else {
        t++;
      }
    }
  }
}

}  // namespace cf

#pragma GCC diagnostic pop

#endif  // CF_POOL_H
