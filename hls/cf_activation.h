// cfgen HLS: per-channel activations applied to an accumulator.
//
// Activation objects are POD aggregates (brace-initialised const tables) with
//   static constexpr unsigned OBITS;                       bits per output value
//   ap_uint<OBITS> activate(nf, pe, const ap_int<A>& acc)  channel o = nf*PE + pe
// Tables are indexed [pe][nf] (PE lanes outermost, so they partition by lane) and
// per-channel flags are packed PE bits per word, bit pe of word nf.
#ifndef CF_ACTIVATION_H
#define CF_ACTIVATION_H

#include "cf_common.h"

namespace cf {

// out = acc >= thr  if direction bit = 1 (+1),  acc <= thr  if 0 (-1).
template <unsigned PE, unsigned NF, unsigned THR_BITS> struct ThresholdAct {
  static constexpr unsigned OBITS = 1;
  static constexpr unsigned THR_W = THR_BITS;
  typename srom<THR_BITS>::type thr[PE][NF];
  typename rom<PE>::type dir[NF];

  template <int A> ap_uint<1> activate(const unsigned nf, const unsigned pe, const ap_int<A>& acc) const {
#pragma HLS INLINE
    const ap_int<THR_BITS> t = srom_get<THR_BITS>(thr[pe][nf]);
    const bool up = rom_reader<PE>::get(dir[nf])[pe];
    return up ? ap_uint<1>(acc >= t) : ap_uint<1>(acc <= t);
  }
};

// out = max(0, sign * acc * 2^FRAC + offset), as an OBITS-bit unsigned value
// (sign bit = 1: +1, 0: -1). OFF_BITS: signed width of the offsets.
template <unsigned PE, unsigned NF, unsigned FRAC, unsigned OFF_BITS, unsigned OUT_BITS> struct ReluOffsetAct {
  static constexpr unsigned OBITS = OUT_BITS;
  static constexpr unsigned OFF_W = OFF_BITS;
  typename srom<OFF_BITS>::type offset[PE][NF];
  typename rom<PE>::type sign[NF];

  template <int A> ap_uint<OUT_BITS> activate(const unsigned nf, const unsigned pe, const ap_int<A>& acc) const {
#pragma HLS INLINE
    constexpr int SW = A + 1 + (int)FRAC;
    constexpr int VW = (SW > (int)OFF_BITS ? SW : (int)OFF_BITS) + 1;
    const bool pos = rom_reader<PE>::get(sign[nf])[pe];
    ap_int<SW> s = acc;
    if (!pos) s = -s;
    s = s << FRAC;
    const ap_int<VW> v = ap_int<VW>(s) + ap_int<VW>(srom_get<OFF_BITS>(offset[pe][nf]));
    return v < 0 ? ap_uint<OUT_BITS>(0) : ap_uint<OUT_BITS>(v);
  }
};

// Identity: the raw accumulator, two's complement, ACC_BITS wide (for tests / debugging).
template <unsigned ACC_BITS> struct PassAct {
  static constexpr unsigned OBITS = ACC_BITS;
  template <int A> ap_uint<ACC_BITS> activate(const unsigned, const unsigned, const ap_int<A>& acc) const {
#pragma HLS INLINE
    return ap_uint<ACC_BITS>(ap_int<ACC_BITS>(acc));
  }
};

}  // namespace cf

#endif  // CF_ACTIVATION_H
