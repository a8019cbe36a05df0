// cfgen HLS: pooling reductions over the window taps of a sliding_window; one output
// pixel (all C channels in one beat) per window.
//
// maxpool     : max-pool on taps of a sliding_window with SIMD = C (one whole pixel per
//               beat of C channels of B bits, K*K beats per output pixel). out = mask XOR
//               max_taps(tap XOR mask), an unsigned max per channel (B = 1: OR, AND where
//               the mask bit is 1; B > 1: an all-ones channel mask pools the minimum, a
//               sign-bit mask orders two's complement values; golden.pool_mask). Feed the
//               sliding window pad_pixel = mask so out-of-image taps are 0 in the masked
//               domain, the identity (ignored).
// avgpool_thr : average-pool sum S[c] = sum_taps x[c] (SUM_BITS two's complement; feed
//               pad_pixel = 0 so out-of-image taps add 0), then a per-channel activation,
//               folded over channels like rtl/cf_avgpool.v. Input: what sliding_window emits
//               with the same SIMD: per output pixel the K*K taps in (ky, kx) order, each as
//               CF = C/SIMD chunks of SIMD channels (chunk j = channels j*SIMD ..
//               j*SIMD+SIMD-1), OPIX*K*K*CF beats per frame at II = 1. SIMD adders and
//               comparators; Act = ThresholdAct<SIMD, CF, TB> with lane l, fold j = channel
//               j*SIMD + l (the mvau PE/NF layout; SIMD = C: ThresholdAct<C, 1, TB>), bit =
//               S >= thr or S <= thr. The C-bit output beat is written with the last chunk
//               of the last tap.
#ifndef CF_POOL_H
#define CF_POOL_H

#include "cf_activation.h"
#include "cf_common.h"

// Loop labels name the loops in HLS reports; g++ would flag them as unused.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-label"

namespace cf {

template <unsigned C, unsigned B, unsigned K, unsigned OPIX>
void maxpool(hls::stream<ap_uint<C * B> >& in, hls::stream<ap_uint<C * B> >& out,
             const typename rom<C * B>::type& mask, const unsigned reps) {
  static_assert(C >= 1 && B >= 1 && K >= 1 && OPIX >= 1, "maxpool: C, B, K and OPIX must be >= 1");
  const ap_uint<C * B> inv = rom_reader<C * B>::get(mask);
  ap_uint<C * B> acc = 0;
  unsigned t = 0;
frames:
  for (unsigned r = 0; r < reps; r++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=1
  taps:
    for (unsigned i = 0; i < OPIX * K * K; i++) {
#pragma HLS PIPELINE II=1
      const ap_uint<C * B> x = in.read() ^ inv;
      if (B == 1) {
        acc = (t == 0) ? x : ap_uint<C * B>(acc | x);
      } else {
      channels:
        for (unsigned c = 0; c < C; c++) {
#pragma HLS UNROLL
          const ap_uint<B> xc = x.range(c * B + B - 1, c * B), ac = acc.range(c * B + B - 1, c * B);
          if (t == 0 || xc > ac) acc.range(c * B + B - 1, c * B) = xc;
        }
      }
      if (t == K * K - 1) {
        out.write(acc ^ inv);
        t = 0;
      } else {
        t++;
      }
    }
  }
}

template <unsigned C, unsigned SIMD, unsigned IN_BITS, bool IN_SIGNED, unsigned K, unsigned OPIX, unsigned SUM_BITS,
          class Act>
void avgpool_thr(hls::stream<ap_uint<SIMD * IN_BITS> >& in, hls::stream<ap_uint<C * Act::OBITS> >& out,
                 const Act& act, const unsigned reps) {
  static_assert(C >= 1 && IN_BITS >= 1 && K >= 1 && OPIX >= 1 && SUM_BITS >= 1,
                "avgpool_thr: C, IN_BITS, K, OPIX and SUM_BITS must be >= 1");
  static_assert(SIMD >= 1 && C % SIMD == 0, "avgpool_thr: SIMD must divide the channels C");
  // Kept >= 1 so that a refused instance reports the rule above rather than a division by 0.
  constexpr unsigned CF = (SIMD >= 1 && C >= SIMD) ? C / SIMD : 1;
  constexpr unsigned OB = Act::OBITS;
  constexpr unsigned LB = SIMD * OB;  // output bits of one chunk
  // Partial sums of all C channels: entry [k][l] = lane l of the chunk due k beats from now
  // ([0] = this beat's). Chunks arrive in strict rotation, so a delay line per lane (read at
  // the head, written at the tail, shifted every beat) replaces an addressed read-modify-write
  // memory: no carried memory dependence and no address mux, II = 1 for any CF, and
  // synthesis can map each lane to shift-register LUTs.
  ap_int<SUM_BITS> sum[CF][SIMD];
#pragma HLS ARRAY_PARTITION variable=sum complete dim=0
init:
  for (unsigned k = 0; k < CF; k++) {
#pragma HLS UNROLL
    for (unsigned l = 0; l < SIMD; l++) {
#pragma HLS UNROLL
      sum[k][l] = 0;  // never used before the first tap overwrites it; defined for C sim
    }
  }
  // Output pixel, chunks shifted in from the top during the last tap (as rtl/cf_avgpool.v):
  // after chunk CF-1, chunk j sits at bits [j*LB, (j+1)*LB). Fixed shifts, no part-select mux.
  ap_uint<C * OB> y = 0;
  unsigned t = 0, j = 0;  // tap, chunk
frames:
  for (unsigned r = 0; r < reps; r++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=1
  beats:
    for (unsigned i = 0; i < OPIX * K * K * CF; i++) {
#pragma HLS PIPELINE II=1
      const ap_uint<SIMD * IN_BITS> x = in.read();
      ap_uint<LB> bits = 0;
    lanes:
      for (unsigned l = 0; l < SIMD; l++) {
#pragma HLS UNROLL
        const ap_int<SUM_BITS> s0 = (t == 0) ? ap_int<SUM_BITS>(0) : sum[0][l];
        const ap_int<SUM_BITS> s = s0 + channel<IN_BITS, IN_SIGNED>(x, l);
      shift:
        for (unsigned k = 0; k + 1 < CF; k++) {
#pragma HLS UNROLL
          sum[k][l] = sum[k + 1][l];
        }
        sum[CF - 1][l] = s;
        bits.range(l * OB + OB - 1, l * OB) = act.activate(j, l, s);  // channel j*SIMD + l
      }
      if (t == K * K - 1) {
        ap_uint<C * OB> nxt = ap_uint<C * OB>(bits) << (C * OB - LB);
        if (CF > 1) nxt |= y >> LB;
        y = nxt;
        if (j == CF - 1) out.write(y);
      }
      if (++j == CF) {
        j = 0;
        if (++t == K * K) t = 0;
      }
    }
  }
}

}  // namespace cf

#pragma GCC diagnostic pop

#endif  // CF_POOL_H
