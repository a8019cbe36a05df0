// cfgen HLS: residual add, the join of a residual block (the IR's ResAddNode; arithmetic in
// docs/ARITHMETIC.md section 9, golden.resadd).
//
//   z_c   = ma[c] * a_c + mb[c] * b_c + bias[c]       ZW-bit two's complement
//   y_c   = z_c >> SH                                 arithmetic shift (floor)
//   out_c = max(0, y_c) if RELU else y_c              OB-bit two's complement
//
//   a  : the body stream, ap_uint<C*AB> pixel beats (AS: two's complement, else unsigned)
//   b  : the shortcut stream, ap_uint<C*BB> pixel beats (BS likewise); the caller gives it
//        the FIFO that balances the two branches (the IR's skip_depth, `#pragma HLS STREAM
//        depth=` on the stream feeding b)
//   out: ap_uint<C*OB> pixel beats, channel c at bits [c*OB, (c+1)*OB)
// PIX pixels per frame, one beat of each input and of the output per pixel.
//
// Folding: SIMD lanes (channels per cycle, two multiplies each) with SIMD dividing C; the unit
// spends CF = C/SIMD cycles per pixel (II = 1): it reads both pixels with chunk 0, takes chunk
// j (channels j*SIMD .. j*SIMD+SIMD-1) in cycle j (the held pixels shift down by one chunk per
// cycle: fixed shifts, no part-select mux) and writes the output pixel with chunk CF-1 (chunks
// shifted in from the top, as avgpool_thr).
//
// Parameters (ResAddParams): one ROM word per chunk, CF words of 3*SIMD fields of PW bits,
// word j lane l (channel j*SIMD + l): ma at field 3l, mb at 3l+1, bias at 3l+2, each two's
// complement (units.resadd.param_words). ma and mb fit MW bits, bias BW bits, PW >= both.
// z wraps modulo 2^ZW: the IR sizes ZW for every reachable z, so the wrap never changes a
// result (partial sums may overflow harmlessly); likewise y fits OB bits (no saturation).
#ifndef CF_RESADD_H
#define CF_RESADD_H

#include "cf_common.h"

// Loop labels name the loops in HLS reports; g++ would flag them as unused.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-label"

namespace cf {

template <unsigned C_, unsigned SIMD_, unsigned MW_, unsigned BW_, unsigned PW_>
struct ResAddParams {
  static_assert(SIMD_ >= 1 && C_ % SIMD_ == 0, "ResAddParams: SIMD must divide the channels C");
  static_assert(MW_ >= 1 && BW_ >= 1 && PW_ >= MW_ && PW_ >= BW_,
                "ResAddParams: a field of PW bits holds a multiplier (MW) and a bias (BW)");
  static constexpr unsigned C = C_, SIMD = SIMD_, MW = MW_, BW = BW_, PW = PW_;
  static constexpr unsigned CF = (SIMD_ >= 1 && C_ >= SIMD_) ? C_ / SIMD_ : 1;
  static constexpr unsigned WORD = 3 * SIMD_ * PW_;  // bits of one word
  typename rom<3 * SIMD_ * PW_>::type words[(SIMD_ >= 1 && C_ >= SIMD_) ? C_ / SIMD_ : 1];
};

template <unsigned PIX, unsigned AB, bool AS, unsigned BB, bool BS, unsigned ZW, unsigned SH, unsigned OB,
          bool RELU, class P>
void resadd(hls::stream<ap_uint<P::C * AB> >& a, hls::stream<ap_uint<P::C * BB> >& b,
            hls::stream<ap_uint<P::C * OB> >& out, const P& p, const unsigned reps) {
  constexpr unsigned C = P::C, SIMD = P::SIMD, CF = P::CF, MW = P::MW, BW = P::BW, PW = P::PW;
  constexpr unsigned WORD = P::WORD;
  static_assert(PIX >= 1 && AB >= 1 && BB >= 1 && OB >= 1 && ZW >= 2, "resadd: PIX and widths must be >= 1");
  static_assert(SH <= 48, "resadd: shift outside 0..48");
  // y = z >> SH on a value at least SH + 2 bits wide (a shift past z's width is its sign)
  constexpr unsigned XW = cmax(ZW, SH + 2);
  constexpr unsigned LA = SIMD * AB, LB = SIMD * BB, LO = SIMD * OB;  // bits of one chunk
  typedef ap_uint<C * AB> a_t;
  typedef ap_uint<C * BB> b_t;
  typedef ap_uint<C * OB> o_t;

  a_t xa = 0;  // the pixels being processed, chunk j in the lowest bits in cycle j
  b_t xb = 0;
  o_t y = 0;   // the output pixel, chunks shifted in from the top
  unsigned j = 0;
frames:
  for (unsigned r = 0; r < reps; r++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=1
  chunks:
    for (unsigned i = 0; i < PIX * CF; i++) {
#pragma HLS PIPELINE II=1
      if (j == 0) {
        xa = a.read();
        xb = b.read();
      }
      const ap_uint<WORD> w = rom_reader<WORD>::get(p.words[j]);
      ap_uint<LO> bits = 0;
    lanes:
      for (unsigned l = 0; l < SIMD; l++) {
#pragma HLS UNROLL
        const ap_int<MW> ma = ap_int<MW>(channel<PW, true>(w, 3 * l));
        const ap_int<MW> mb = ap_int<MW>(channel<PW, true>(w, 3 * l + 1));
        const ap_int<BW> bias = ap_int<BW>(channel<PW, true>(w, 3 * l + 2));
        const ap_int<MW + AB + 1> pa = ma * channel<AB, AS>(xa, l);
        const ap_int<MW + BB + 1> pb = mb * channel<BB, BS>(xb, l);
        const ap_int<ZW> z = ap_int<ZW>(ap_int<ZW>(pa) + ap_int<ZW>(pb) + ap_int<ZW>(bias));
        ap_int<XW> s = ap_int<XW>(z) >> SH;
        if (RELU && s < 0) s = 0;
        bits.range(l * OB + OB - 1, l * OB) = ap_int<OB>(s);
      }
      o_t nxt = o_t(bits) << (C * OB - LO);
      if (CF > 1) {
        nxt |= y >> LO;
        xa >>= LA;
        xb >>= LB;
      }
      y = nxt;
      if (j == CF - 1) {
        out.write(y);
        j = 0;
      } else {
        j++;
      }
    }
  }
}

}  // namespace cf

#pragma GCC diagnostic pop

#endif  // CF_RESADD_H
