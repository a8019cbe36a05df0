// cfgen HLS: per-group scale MAC unit (CF-n's fixed-point layer after XNOR-CF outputs).
//
//   P[k, g] = sum_{o in group g} W[k, o] * x_o           integer MACs inside a group of N
//   z_k     = sum_g A_g * P[k, g] + B_k                   one multiply-accumulate per group
//   out_k   = max(0, z_k) if RELU else z_k                OUT_BITS wide
// Folding: PE outputs in parallel, SIMD inputs per cycle; SIMD divides N (a group spans
// N/SIMD cycles, P carried between them) or N divides SIMD (SIMD/N whole groups and as
// many scale multiplies per lane and cycle). MW/N scales instead of MW, read once per
// group and shared by all PE lanes.
//   in : ap_uint<SIMD*IN_BITS> chunks, OPIX*MW/SIMD per frame (a pixel split in chunks)
//   out: ap_uint<PE*OUT_BITS> chunks, OPIX*MH/PE per frame
// P wraps modulo 2^GROUP_BITS and z modulo 2^ACC_BITS; the IR sizes both for the final
// values, so the wrap never changes a result.
#ifndef CF_SCALEMAC_H
#define CF_SCALEMAC_H

#include "cf_common.h"

// Loop labels name the loops in HLS reports; g++ would flag them as unused.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-label"

namespace cf {

// Constant tables: weights packed like mvau's (W_BITS per column), scales[g], bias[pe][nf].
template <unsigned MW_, unsigned MH_, unsigned SIMD_, unsigned PE_, unsigned N_, unsigned W_BITS_,
          unsigned SCALE_BITS_, unsigned BIAS_BITS_>
struct ScaleMacParams {
  static constexpr unsigned MW = MW_, MH = MH_, SIMD = SIMD_, PE = PE_, N = N_, W_BITS = W_BITS_,
                            SCALE_BITS = SCALE_BITS_, BIAS_BITS = BIAS_BITS_;
  typename rom<SIMD_ * W_BITS_>::type weights[PE_][(MW_ / SIMD_) * (MH_ / PE_)];
  typename rom<SCALE_BITS_>::type scales[MW_ / N_];
  typename srom<BIAS_BITS_>::type bias[PE_][MH_ / PE_];
};

template <unsigned OPIX, unsigned IN_BITS, bool IN_SIGNED, unsigned GROUP_BITS, unsigned ACC_BITS, bool RELU,
          unsigned OUT_BITS, class P>
void scalemac(hls::stream<ap_uint<P::SIMD * IN_BITS> >& in, hls::stream<ap_uint<P::PE * OUT_BITS> >& out,
              const P& p, const unsigned reps) {
  constexpr unsigned MW = P::MW, MH = P::MH, SIMD = P::SIMD, PE = P::PE, N = P::N, WB = P::W_BITS;
  constexpr unsigned SB = P::SCALE_BITS, BB = P::BIAS_BITS;
  static_assert(MW % SIMD == 0 && MH % PE == 0, "SIMD/PE must divide the matrix");
  static_assert(MW % N == 0 && (N % SIMD == 0 || SIMD % N == 0), "SIMD must divide N or N divide SIMD");
  constexpr unsigned SF = MW / SIMD;
  constexpr unsigned NF = MH / PE;
  constexpr unsigned GS = SIMD < N ? SIMD : N;      // values of one group in one chunk
  constexpr unsigned GPC = SIMD / GS;                // group pieces per chunk
  constexpr unsigned CPG = N / GS;                   // chunks per group (1 if N <= SIMD)
  constexpr unsigned PW = WB + IN_BITS + 1;          // one product
  typedef ap_uint<SIMD * IN_BITS> in_t;

  in_t inbuf[SF];
  ap_int<GROUP_BITS> part[PE];
  ap_int<ACC_BITS> acc[PE];
#pragma HLS ARRAY_PARTITION variable=part complete dim=1
#pragma HLS ARRAY_PARTITION variable=acc complete dim=1
  for (unsigned pe = 0; pe < PE; pe++) {
#pragma HLS UNROLL
    part[pe] = 0;
    acc[pe] = 0;
  }

frames:
  for (unsigned r = 0; r < reps; r++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=1
    unsigned sf = 0, nf = 0, tile = 0, gc = 0, g0 = 0;
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
      const bool group_end = (gc == CPG - 1);
      ap_uint<PE * OUT_BITS> y = 0;
    lanes:
      for (unsigned pe = 0; pe < PE; pe++) {
#pragma HLS UNROLL
        const ap_uint<SIMD * WB> w = rom_reader<SIMD * WB>::get(p.weights[pe][tile]);
        ap_int<ACC_BITS> a = (sf == 0) ? ap_int<ACC_BITS>(srom_get<BB>(p.bias[pe][nf])) : acc[pe];
        ap_int<GROUP_BITS> pg = (gc == 0) ? ap_int<GROUP_BITS>(0) : part[pe];
      pieces:
        for (unsigned j = 0; j < GPC; j++) {
#pragma HLS UNROLL
          if (j > 0) pg = 0;
          for (unsigned s = 0; s < GS; s++) {
#pragma HLS UNROLL
            const unsigned col = j * GS + s;
            pg += ap_int<PW>(channel<WB, true>(w, col) * channel<IN_BITS, IN_SIGNED>(x, col));
          }
          if (group_end) {
            const ap_int<SB + 1> scale = ap_int<SB + 1>(rom_reader<SB>::get(p.scales[g0 + j]));
            a += pg * scale;
          }
        }
        part[pe] = pg;
        acc[pe] = a;
        if (sf == SF - 1) {
          if (RELU && a < 0) a = 0;
          y.range(pe * OUT_BITS + OUT_BITS - 1, pe * OUT_BITS) = ap_int<OUT_BITS>(a);
        }
      }
      if (sf == SF - 1) out.write(y);
      tile++;
      if (group_end) {
        gc = 0;
        g0 += GPC;
      } else {
        gc++;
      }
      if (++sf == SF) {
        sf = 0;
        g0 = 0;
        gc = 0;
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

#endif  // CF_SCALEMAC_H
