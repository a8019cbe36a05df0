// cfgen HLS: matrix-vector-activation unit, folded by PE and SIMD (finn-hlslib style).
//
// For each of OPIX input vectors (MW values, arriving as MW/SIMD chunks of SIMD values)
// computes MH dot products with the rows of a constant matrix, PE rows in parallel and
// SIMD columns per cycle, and applies a per-channel activation:
//   in : ap_uint<Dot::IN_W> chunks, OPIX*MW/SIMD per frame (a window from sliding_window)
//   out: ap_uint<PE*Act::OBITS> chunks, OPIX*MH/PE per frame, lane pe = channel nf*PE+pe
// Weights: weights[pe][nf*SF + sf] holds row nf*PE+pe, columns sf*SIMD .. sf*SIMD+SIMD-1
// (column sf*SIMD+s in bits [s*WB, (s+1)*WB)). The input vector is buffered on the first
// output fold and reused for the other MH/PE - 1 folds: MW/SIMD*MH/PE cycles per vector.
//
// Dot policies:
//   XnorDot<SIMD, MW, ACC_BITS>  binary (bit 1 = +1): acc = 2*popcount(xnor(x, w)) - MW,
//                                computed as MW - 2*popcount(x ^ w) on an unsigned counter.
//   IntDot<SIMD, IN_BITS, IN_SIGNED, W_BITS, ACC_BITS[, MULT]>  integer MACs (first layer:
//                                uint8 pixels x int8 weights) in ACC_BITS two's complement.
//                                MULT (default 0) is the folding's multiplier choice for
//                                the int8 layer (IR ConvNode.mult): 0 = 'dsp', one
//                                multiply per product; 1 = 'dsp2', lanes 2j and 2j+1 share
//                                the pixel and one 25 x 9 multiply per pair of products,
//                                x * (w_lo + w_hi * 2^17) (the DSP48 pre-adder forms the
//                                packed weight), is summed over two columns and split into
//                                the two lanes: |sum x*w_lo| <= 2*255*128 < 2^16 keeps them
//                                separable. Weights must lie in [-127, 127] (the packed
//                                weight fills the 25-bit pre-adder; the backend checks).
//                                Same integers as MULT 0 (rtl/cf_mvu.v packs differently:
//                                x - 128 and groups of four).
// Every policy has lanes<PE>(acc, first, x, w): one beat for all PE lanes.
#ifndef CF_MVAU_H
#define CF_MVAU_H

#include "cf_activation.h"
#include "cf_common.h"

// Loop labels name the loops in HLS reports; g++ would flag them as unused.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-label"

namespace cf {

template <unsigned SIMD, unsigned MW, unsigned ACC_BITS> struct XnorDot {
  static constexpr unsigned IN_W = SIMD;
  static constexpr unsigned W_W = SIMD;
  static constexpr unsigned ACC = ACC_BITS;
  typedef ap_uint<ubits(MW)> acc_t;  // popcount of x ^ w so far
  static acc_t zero() { return 0; }
  static acc_t step(const acc_t a, const ap_uint<IN_W>& x, const ap_uint<W_W>& w) {
#pragma HLS INLINE
    return acc_t(a + popcount<SIMD>(x ^ w));
  }
  template <unsigned PE> static void lanes(acc_t acc[PE], const bool first, const ap_uint<IN_W>& x,
                                           const ap_uint<W_W> w[PE]) {
#pragma HLS INLINE
    for (unsigned pe = 0; pe < PE; pe++) {
#pragma HLS UNROLL
      acc[pe] = step(first ? zero() : acc[pe], x, w[pe]);
    }
  }
  static ap_int<ACC_BITS> finish(const acc_t a) {
#pragma HLS INLINE
    const ap_int<ubits(MW) + 2> d = ap_int<ubits(MW) + 2>(MW) - (ap_int<ubits(MW) + 2>(a) << 1);
    return ap_int<ACC_BITS>(d);
  }
};

template <unsigned SIMD, unsigned IN_BITS, bool IN_SIGNED, unsigned W_BITS, unsigned ACC_BITS,
          unsigned MULT = 0>
struct IntDot {
  static_assert(MULT <= 1, "MULT: 0 = dsp, 1 = dsp2");
  static constexpr unsigned MULT_STYLE = MULT;  // hint only (see above)
  static constexpr unsigned IN_W = SIMD * IN_BITS;
  static constexpr unsigned W_W = SIMD * W_BITS;
  static constexpr unsigned ACC = ACC_BITS;
  typedef ap_int<ACC_BITS> acc_t;  // wraps modulo 2^ACC_BITS; the final sum fits
  static acc_t zero() { return 0; }
  static acc_t step(acc_t a, const ap_uint<IN_W>& x, const ap_uint<W_W>& w) {
#pragma HLS INLINE
#ifdef CF_SIM_FAST
    // Host integers: the same sum (exact in 64 bits), wrapped to ACC_BITS like below.
    if (IN_W <= 64 && W_W <= 64 && IN_BITS + W_BITS + ubits(SIMD) < 62) {
      const unsigned long long xv = (unsigned long long)x.to_uint64(), wv = (unsigned long long)w.to_uint64();
      long long sum = 0;
      for (unsigned s = 0; s < SIMD; s++) {
        const long long wi = sext(wv >> (s * W_BITS), W_BITS);
        const long long xi = IN_SIGNED ? sext(xv >> (s * IN_BITS), IN_BITS)
                                       : (long long)((xv >> (s * IN_BITS)) & ((1ull << IN_BITS) - 1));
        sum += wi * xi;
      }
      return acc_t(a + acc_t(sum));
    }
#endif
    for (unsigned s = 0; s < SIMD; s++) {
#pragma HLS UNROLL
      a += channel<W_BITS, true>(w, s) * channel<IN_BITS, IN_SIGNED>(x, s);
    }
    return a;
  }
  template <unsigned PE> static void lanes(acc_t acc[PE], const bool first, const ap_uint<IN_W>& x,
                                           const ap_uint<W_W> w[PE]) {
#pragma HLS INLINE
    constexpr unsigned NPAIR = MULT ? PE / 2 : 0;
  pairs:
    for (unsigned j = 0; j < NPAIR; j++) {
#pragma HLS UNROLL
      acc_t lo = first ? zero() : acc[2 * j], hi = first ? zero() : acc[2 * j + 1];
      step_pair(lo, hi, x, w[2 * j], w[2 * j + 1]);
      acc[2 * j] = lo;
      acc[2 * j + 1] = hi;
    }
  single:
    for (unsigned pe = 2 * NPAIR; pe < PE; pe++) {
#pragma HLS UNROLL
      acc[pe] = step(first ? zero() : acc[pe], x, w[pe]);
    }
  }
  // Two lanes sharing x: per pair of columns one sum of two packed products
  // P = x0*(wl0 + wh0*2^17) + x1*(wl1 + wh1*2^17) = L + H*2^17 with |L| < 2^16, so
  // L = P's low 17 bits read as signed and H = (P - L) / 2^17.
  static void step_pair(acc_t& lo, acc_t& hi, const ap_uint<IN_W>& x, const ap_uint<W_W>& wl,
                        const ap_uint<W_W>& wh) {
#pragma HLS INLINE
    static_assert(IN_BITS <= 8 && W_BITS <= 8, "dsp2 packs 8-bit pixels and 8-bit weights");
#ifdef CF_SIM_FAST
    // Host integers, the same packing and split (exact in 64 bits).
    if (IN_W <= 64 && W_W <= 64) {
      const unsigned long long xv = (unsigned long long)x.to_uint64();
      const unsigned long long lv = (unsigned long long)wl.to_uint64(), hv = (unsigned long long)wh.to_uint64();
      long long sl = 0, sh = 0;
      for (unsigned s = 0; s < SIMD; s += 2) {
        long long p = 0;
        for (unsigned t = s; t < s + 2 && t < SIMD; t++) {
          const long long a = sext(hv >> (t * W_BITS), W_BITS) * (1ll << 17) + sext(lv >> (t * W_BITS), W_BITS);
          const long long xi = IN_SIGNED ? sext(xv >> (t * IN_BITS), IN_BITS)
                                         : (long long)((xv >> (t * IN_BITS)) & ((1ull << IN_BITS) - 1));
          p += a * xi;
        }
        const long long l = sext((unsigned long long)p, 17);
        sl += l;
        sh += (p - l) >> 17;
      }
      lo = acc_t(lo + acc_t(sl));
      hi = acc_t(hi + acc_t(sh));
      return;
    }
#endif
    typedef ap_int<25> packed_t;   // DSP48E1 A/D port width
    typedef ap_int<35> prod_t;     // two 34-bit products
  columns:
    for (unsigned s = 0; s < SIMD; s += 2) {
#pragma HLS UNROLL
      prod_t p = 0;
      for (unsigned t = s; t < s + 2 && t < SIMD; t++) {
#pragma HLS UNROLL
        const packed_t a = (packed_t(channel<W_BITS, true>(wh, t)) << 17) + packed_t(channel<W_BITS, true>(wl, t));
        const ap_int<IN_BITS + 1> xi = channel<IN_BITS, IN_SIGNED>(x, t);
        const ap_int<34> m = a * xi;
#pragma HLS BIND_OP variable=m op=mul impl=dsp
        p += m;
      }
      const ap_int<17> l = ap_int<17>(p.range(16, 0));
      const prod_t h = (p - prod_t(l)) >> 17;
      lo += acc_t(l);
      hi += acc_t(h);
    }
  }
  static ap_int<ACC_BITS> finish(const acc_t a) { return a; }
#ifdef CF_SIM_FAST
  // Sign-extend the low `bits` (< 64) bits of v.
  static long long sext(const unsigned long long v, const unsigned bits) {
    const unsigned long long m = 1ull << (bits - 1);
    return (long long)(((v & ((m << 1) - 1)) ^ m) - m);
  }
#endif
};

template <unsigned MW, unsigned MH, unsigned SIMD, unsigned PE, unsigned OPIX, class Dot, class Act>
void mvau(hls::stream<ap_uint<Dot::IN_W> >& in, hls::stream<ap_uint<PE * Act::OBITS> >& out,
          const typename rom<Dot::W_W>::type weights[PE][(MW / SIMD) * (MH / PE)], const Act& act,
          const unsigned reps) {
  static_assert(SIMD >= 1 && MW % SIMD == 0, "SIMD must divide the matrix width");
  static_assert(PE >= 1 && MH % PE == 0, "PE must divide the matrix height");
  constexpr unsigned SF = MW / SIMD;
  constexpr unsigned NF = MH / PE;
  constexpr unsigned OB = Act::OBITS;
  typedef ap_uint<Dot::IN_W> in_t;

  in_t inbuf[SF];
  typename Dot::acc_t acc[PE];
#pragma HLS ARRAY_PARTITION variable=acc complete dim=1
  for (unsigned pe = 0; pe < PE; pe++) {
#pragma HLS UNROLL
    acc[pe] = Dot::zero();
  }

frames:
  for (unsigned r = 0; r < reps; r++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=1
    unsigned sf = 0, nf = 0, tile = 0;
  fold:
    for (unsigned i = 0; i < OPIX * NF * SF; i++) {
#pragma HLS PIPELINE II=1
      in_t x;
      if (nf == 0) {
        x = in.read();
        if (NF > 1) inbuf[sf] = x;
      } else {
        x = inbuf[sf];
      }
      ap_uint<Dot::W_W> w[PE];
#pragma HLS ARRAY_PARTITION variable=w complete dim=1
    read_w:
      for (unsigned pe = 0; pe < PE; pe++) {
#pragma HLS UNROLL
        w[pe] = rom_reader<Dot::W_W>::get(weights[pe][tile]);
      }
      Dot::template lanes<PE>(acc, sf == 0, x, w);
      if (sf == SF - 1) {
        ap_uint<PE * OB> y = 0;
      activate:
        for (unsigned pe = 0; pe < PE; pe++) {
#pragma HLS UNROLL
          y.range(pe * OB + OB - 1, pe * OB) = act.activate(nf, pe, Dot::finish(acc[pe]));
        }
        out.write(y);
      }
      tile++;
      if (++sf == SF) {
        sf = 0;
        if (++nf == NF) {
          nf = 0;
          tile = 0;
        }
      }
    }
  }
}

}  // namespace cf

#pragma GCC diagnostic pop

#endif  // CF_MVAU_H
