// cfgen HLS: run-time weights, the weight-stream loader (docs/WEIGHTS.md, docs/HLS.md).
//
// A build with run-time weights keeps every weight / parameter table of the dataflow as a
// writable static array; the top's load mode fills them from `wgt_stream`:
//  * 32-bit chunks, no header. The memories come in stream order (generator/hw/weights.py:
//    node order, within a node the unit plan's memory order); a memory is its words in
//    address order 0 .. DEPTH-1, a word of W bits is ceil(W/32) chunks, least significant
//    first, the last chunk zero-padded. The words are the RTL ROM words
//    (generator/hw/units: `contents`): PE lanes of LW bits, lane p at bits [p*LW, (p+1)*LW).
//  * The loaders below cut each word into its lanes as the chunks arrive (no word buffer:
//    a lane buffer of LW (+32) bits) and write every lane into the HLS table of the node,
//    in the layout the dataflow units read (tables [lane][address], cf_mvau.h,
//    cf_activation.h, cf_scalemac.h, cf_resadd.h). Where the ROM holds a value in the RTL's
//    domain, the loader converts it exactly (see load_thresholds / load_offsets).
//  * Every chunk is added to the Fletcher sums (s1 = sum of the chunks, s2 = sum of the
//    running s1, mod 2^32); after the last memory `wload_status` writes s1, then s2 with
//    TLAST, to `wstat_stream` (TDATA 32, TKEEP / TSTRB all ones, as cf_axis.h).
// TLAST of the weight stream is ignored: the loader counts.
#ifndef CF_WLOAD_H
#define CF_WLOAD_H

#include "cf_activation.h"
#include "cf_common.h"
#include <ap_axi_sdata.h>

// Loop labels name the loops in HLS reports; g++ would flag them as unused.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-label"

namespace cf {

typedef ap_axiu<32, 0, 0, 0> wgt_beat;    // weight stream beat (TDATA 32; TLAST ignored)
typedef ap_axiu<32, 0, 0, 0> wstat_beat;  // status beat: s1, then s2 with TLAST

// Fletcher sums of the chunks received so far.
struct Fletcher {
  ap_uint<32> s1, s2;
};

inline void fletcher_init(Fletcher& f) {
  f.s1 = 0;
  f.s2 = 0;
}

// One chunk of the weight stream, added to the sums.
inline ap_uint<32> wload_chunk(hls::stream<wgt_beat>& in, Fletcher& f) {
#pragma HLS INLINE
  const ap_uint<32> d = in.read().data;
  f.s1 += d;
  f.s2 += f.s1;
  return d;
}

// The status after a load: s1, then s2 with TLAST.
inline void wload_status(hls::stream<wstat_beat>& out, const Fletcher& f) {
  wstat_beat b;
  b.data = f.s1;
  b.keep = -1;
  b.strb = -1;
  b.last = 0;
  out.write(b);
  b.data = f.s2;
  b.last = 1;
  out.write(b);
}

// ---------------------------------------------------------------- table words
// rom_writer<W>::put(dst, v): the inverse of rom_reader (cf_common.h).
template <unsigned W, bool WIDE = (W > 64)> struct rom_writer {
  static void put(typename rom<W>::type& d, const ap_uint<W>& v) {
#pragma HLS INLINE
    d = (typename rom<W>::type)v.to_uint64();
  }
};
template <unsigned W> struct rom_writer<W, true> {
  static void put(typename rom<W>::type& d, const ap_uint<W>& v) {
#pragma HLS INLINE
    constexpr unsigned NW = (W + 63) / 64;
    ap_uint<NW * 64> x = v;
    for (unsigned i = 0; i < NW; i++) {
#pragma HLS UNROLL
      d.w[i] = (uint64_t)x.range(64 * i + 63, 64 * i).to_uint64();
    }
  }
};
template <unsigned W> inline void srom_put(typename srom<W>::type& d, const ap_int<W>& v) {
#pragma HLS INLINE
  d = (typename srom<W>::type)v.to_int64();
}

// ---------------------------------------------------------------- lane cutter
// lane_cutter<LW, PE>: the lanes of one memory word after another from the word's chunks.
// push(chunk, out, first) returns how many lanes the chunk completes (at most MAXL):
// out[0 .. n) are lanes first .. first+n-1 of the current word; `done` is set when they
// include the word's last lane (the rest of that chunk is the padding, dropped). Three
// shapes: lanes of whole chunks (LW % 32 == 0: a shift register, no padding), whole lanes
// per chunk (32 % LW == 0: fixed slices), else a LW+32-bit buffer with a bit count.
template <unsigned LW, unsigned PE, unsigned SHAPE = (LW % 32 == 0) ? 0 : ((32 % LW == 0) ? 1 : 2)>
struct lane_cutter;

template <unsigned LW, unsigned PE> struct lane_cutter<LW, PE, 0> {
  static constexpr unsigned NC = cdiv(PE * LW, 32);  // chunks per word
  static constexpr unsigned MAXL = 1;
  static constexpr unsigned CPL = LW / 32;            // chunks per lane
  ap_uint<LW> buf;
  unsigned c, lane;
  bool done;
  void reset() {
    buf = 0;
    c = 0;
    lane = 0;
    done = false;
  }
  unsigned push(const ap_uint<32> d, ap_uint<LW> out[MAXL], unsigned& first) {
#pragma HLS INLINE
    if (CPL == 1) {
      buf = d;
    } else {
      buf = (buf >> 32) | (ap_uint<LW>(d) << (LW - 32));
    }
    first = lane;
    done = false;
    if (++c < CPL) return 0;
    c = 0;
    out[0] = buf;
    if (++lane == PE) {
      lane = 0;
      done = true;
    }
    return 1;
  }
};

template <unsigned LW, unsigned PE> struct lane_cutter<LW, PE, 1> {
  static constexpr unsigned NC = cdiv(PE * LW, 32);
  static constexpr unsigned MAXL = 32 / LW;          // whole lanes per chunk
  unsigned lane;
  bool done;
  void reset() {
    lane = 0;
    done = false;
  }
  unsigned push(const ap_uint<32> d, ap_uint<LW> out[MAXL], unsigned& first) {
#pragma HLS INLINE
    first = lane;
    const unsigned n = (PE - lane < MAXL) ? PE - lane : MAXL;
    for (unsigned k = 0; k < MAXL; k++) {
#pragma HLS UNROLL
      out[k] = d.range(k * LW + LW - 1, k * LW);
    }
    lane += n;
    done = (lane == PE);
    if (done) lane = 0;
    return n;
  }
};

template <unsigned LW, unsigned PE> struct lane_cutter<LW, PE, 2> {
  static constexpr unsigned NC = cdiv(PE * LW, 32);
  static constexpr unsigned MAXL = (LW + 31) / LW;   // lanes one chunk can complete
  static constexpr unsigned BW = LW + 32;            // fewer than LW bits wait, plus a chunk
  ap_uint<BW> buf;
  unsigned nb, lane;
  bool done;
  void reset() {
    buf = 0;
    nb = 0;
    lane = 0;
    done = false;
  }
  unsigned push(const ap_uint<32> d, ap_uint<LW> out[MAXL], unsigned& first) {
#pragma HLS INLINE
    buf |= ap_uint<BW>(d) << nb;
    nb += 32;
    first = lane;
    unsigned n = 0;
    for (unsigned k = 0; k < MAXL; k++) {
#pragma HLS UNROLL
      if (nb >= LW && lane + n < PE) {
        out[k] = buf.range(LW - 1, 0);
        buf >>= LW;
        nb -= LW;
        n++;
      }
    }
    lane += n;
    done = (lane == PE);
    if (done) {  // the rest of the chunk is padding
      lane = 0;
      buf = 0;
      nb = 0;
    }
    return n;
  }
};

// ---------------------------------------------------------------- loaders
// Plain lanes: t[p][a] = lane p of word a (conv weights xnor / int8 dsp, scale MAC
// weights; PE = 1: whole words, the residual add's parameters).
template <unsigned LW, unsigned PE, unsigned DEPTH>
void load_lanes(hls::stream<wgt_beat>& in, Fletcher& f, typename rom<LW>::type t[PE][DEPTH]) {
  typedef lane_cutter<LW, PE> cut_t;
  cut_t cut;
  cut.reset();
  unsigned a = 0;
chunks:
  for (unsigned i = 0; i < DEPTH * cut_t::NC; i++) {
#pragma HLS PIPELINE II=1
    ap_uint<LW> v[cut_t::MAXL];
#pragma HLS ARRAY_PARTITION variable=v complete dim=1
    unsigned first = 0;
    const unsigned n = cut.push(wload_chunk(in, f), v, first);
    for (unsigned k = 0; k < cut_t::MAXL; k++) {
#pragma HLS UNROLL
      if (k < n) rom_writer<LW>::put(t[first + k][a], v[k]);
    }
    if (cut.done) a++;
  }
}

// Whole words: t[a] = word a (PE = 1).
template <unsigned W, unsigned DEPTH>
void load_words(hls::stream<wgt_beat>& in, Fletcher& f, typename rom<W>::type t[DEPTH]) {
  typedef lane_cutter<W, 1> cut_t;
  cut_t cut;
  cut.reset();
  unsigned a = 0;
chunks:
  for (unsigned i = 0; i < DEPTH * cut_t::NC; i++) {
#pragma HLS PIPELINE II=1
    ap_uint<W> v[cut_t::MAXL];
    unsigned first = 0;
    const unsigned n = cut.push(wload_chunk(in, f), v, first);
    if (n) rom_writer<W>::put(t[a], v[0]);
    if (cut.done) a++;
  }
}

// Signed lanes: t[p][a] = lane p of word a, two's complement (scale MAC bias).
template <unsigned LW, unsigned PE, unsigned DEPTH, unsigned TB>
void load_signed_lanes(hls::stream<wgt_beat>& in, Fletcher& f, typename srom<TB>::type t[PE][DEPTH]) {
  static_assert(TB >= LW, "the table holds the lane's bits");
  typedef lane_cutter<LW, PE> cut_t;
  cut_t cut;
  cut.reset();
  unsigned a = 0;
chunks:
  for (unsigned i = 0; i < DEPTH * cut_t::NC; i++) {
#pragma HLS PIPELINE II=1
    ap_uint<LW> v[cut_t::MAXL];
#pragma HLS ARRAY_PARTITION variable=v complete dim=1
    unsigned first = 0;
    const unsigned n = cut.push(wload_chunk(in, f), v, first);
    for (unsigned k = 0; k < cut_t::MAXL; k++) {
#pragma HLS UNROLL
      if (k < n) srom_put<TB>(t[first + k][a], ap_int<TB>(ap_int<LW>(v[k])));
    }
    if (cut.done) a++;
  }
}

// Group scales of a scale MAC: memory word sf holds the GPC scales of beat sf (SCW bits
// each; a group spanning CPG > 1 beats repeats in each), the table the scale of every group:
// scales[(sf / CPG) * GPC + j] = field j of word sf.
template <unsigned SCW, unsigned GPC, unsigned CPG, unsigned SF, unsigned NG>
void load_scales(hls::stream<wgt_beat>& in, Fletcher& f, typename rom<SCW>::type scales[NG]) {
  static_assert((SF / CPG) * GPC == NG, "scales: one field per group");
  typedef lane_cutter<SCW, GPC> cut_t;
  cut_t cut;
  cut.reset();
  unsigned sf = 0;
chunks:
  for (unsigned i = 0; i < SF * cut_t::NC; i++) {
#pragma HLS PIPELINE II=1
    ap_uint<SCW> v[cut_t::MAXL];
#pragma HLS ARRAY_PARTITION variable=v complete dim=1
    unsigned first = 0;
    const unsigned n = cut.push(wload_chunk(in, f), v, first);
    for (unsigned k = 0; k < cut_t::MAXL; k++) {
#pragma HLS UNROLL
      if (k < n) rom_writer<SCW>::put(scales[(sf / CPG) * GPC + first + k], v[k]);
    }
    if (cut.done) sf++;
  }
}

// int8 dsp2 weights (IntDot MULT 1): the ROM's lane 2j+1 (j < PE/2) holds
// h = w_hi - (w_lo < 0) per element (the DSP A port {h, sign-extended w_lo}, docs/RTL.md);
// the HLS table the weights themselves: w_hi = h + (w_lo < 0). Also sums each output
// channel's weights (rowsum[p][nf], channel nf*PE + p) for the parameters.
template <unsigned SIMD, unsigned PE, unsigned SF, unsigned NF, unsigned RSB>
void load_weights_dsp2(hls::stream<wgt_beat>& in, Fletcher& f, typename rom<SIMD * 8>::type t[PE][SF * NF],
                       ap_int<RSB> rowsum[PE][NF]) {
  constexpr unsigned LW = SIMD * 8;
  constexpr unsigned NPAIR = PE / 2;
  typedef lane_cutter<LW, PE> cut_t;
  cut_t cut;
  cut.reset();
  unsigned a = 0, sf = 0, nf = 0;
  ap_uint<LW> lo = 0;  // the last lane 2j (w_lo of the pair)
chunks:
  for (unsigned i = 0; i < SF * NF * cut_t::NC; i++) {
#pragma HLS PIPELINE II=1
    ap_uint<LW> v[cut_t::MAXL];
#pragma HLS ARRAY_PARTITION variable=v complete dim=1
    unsigned first = 0;
    const unsigned n = cut.push(wload_chunk(in, f), v, first);
    for (unsigned k = 0; k < cut_t::MAXL; k++) {
#pragma HLS UNROLL
      if (k < n) {
        const unsigned p = first + k;
        ap_uint<LW> w = v[k];
        if ((p & 1) && p < 2 * NPAIR) {
          for (unsigned s = 0; s < SIMD; s++) {
#pragma HLS UNROLL
            const ap_int<8> wl = ap_int<8>(lo.range(8 * s + 7, 8 * s));
            const ap_int<8> h = ap_int<8>(w.range(8 * s + 7, 8 * s));
            w.range(8 * s + 7, 8 * s) = ap_int<8>(h + (wl < 0 ? 1 : 0));
          }
        }
        lo = w;
        ap_int<RSB> sum = 0;
        for (unsigned s = 0; s < SIMD; s++) {
#pragma HLS UNROLL
          sum += ap_int<8>(w.range(8 * s + 7, 8 * s));
        }
        rowsum[p][nf] = (sf == 0) ? sum : ap_int<RSB>(rowsum[p][nf] + sum);
        rom_writer<LW>::put(t[p][a], w);
      }
    }
    if (cut.done) {
      a++;
      if (++sf == SF) {
        sf = 0;
        nf++;
      }
    }
  }
}

// The {flag, value} parameter lanes of a threshold activation (TW+1 bits, flag on top,
// value TW-bit two's complement; word nf lane p = channel nf*PE + p) -> Act (a
// ThresholdAct<PE, NF, THR_BITS>): dir[nf] bit p = flag, thr[p][nf] from the value v:
//   MODE 0: thr = v (int8 dsp matrices; average-pool thresholds: the ROM compares acc / the
//           sum with v);
//   MODE 1: xnor: the ROM compares the popcount pc = (acc + K) / 2 with v, so
//           thr = 2v - K (acc >= 2v - K <=> pc >= v, likewise <=);
//   MODE 2: int8 dsp2: the ROM compares acc - 128*S with v (S the channel's weight sum,
//           rowsum from load_weights_dsp2), so thr = v + 128*S.
template <unsigned PE, unsigned NF, unsigned TW, unsigned MODE, unsigned K, unsigned RSB, class Act>
void load_thresholds_rs(hls::stream<wgt_beat>& in, Fletcher& f, Act& act, const ap_int<RSB> rowsum[PE][NF]) {
  constexpr unsigned LW = TW + 1;
  constexpr unsigned TB = Act::THR_W;
  static_assert(MODE <= 2, "MODE: 0 as is, 1 xnor popcount, 2 dsp2");
  typedef lane_cutter<LW, PE> cut_t;
  cut_t cut;
  cut.reset();
  unsigned a = 0;
  ap_uint<PE> dir = 0;
chunks:
  for (unsigned i = 0; i < NF * cut_t::NC; i++) {
#pragma HLS PIPELINE II=1
    ap_uint<LW> v[cut_t::MAXL];
#pragma HLS ARRAY_PARTITION variable=v complete dim=1
    unsigned first = 0;
    const unsigned n = cut.push(wload_chunk(in, f), v, first);
    for (unsigned k = 0; k < cut_t::MAXL; k++) {
#pragma HLS UNROLL
      if (k < n) {
        const unsigned p = first + k;
        const ap_int<TW> val = ap_int<TW>(v[k].range(TW - 1, 0));
        dir[p] = v[k][TW];
        ap_int<TB> t;
        if (MODE == 1) {
          t = ap_int<TB>(2 * ap_int<TB>(val) - ap_int<TB>(K));
        } else if (MODE == 2) {
          t = ap_int<TB>(ap_int<TB>(val) + ap_int<TB>(rowsum[p][a]) * 128);
        } else {
          t = ap_int<TB>(val);
        }
        srom_put<TB>(act.thr[p][a], t);
      }
    }
    if (cut.done) {
      rom_writer<PE>::put(act.dir[a], dir);
      dir = 0;
      a++;
    }
  }
}

template <unsigned PE, unsigned NF, unsigned TW, unsigned MODE, unsigned K, class Act>
void load_thresholds(hls::stream<wgt_beat>& in, Fletcher& f, Act& act) {
  static_assert(MODE != 2, "dsp2 thresholds need the weight sums: load_thresholds_rs");
  const ap_int<2> none[PE][NF] = {};
  load_thresholds_rs<PE, NF, TW, MODE, K, 2>(in, f, act, none);
}

// The {flag, value} lanes of a relu_offset activation -> Act (a ReluOffsetAct<PE, NF, FRAC,
// OFF_BITS, OB>): sign[nf] bit p = flag, offset[p][nf] = v, or for int8 dsp2 (DSP2) the
// ROM's offset of acc - 128*S: offset = v - (flag ? 1 : -1) * 128*S * 2^FRAC.
template <unsigned PE, unsigned NF, unsigned TW, unsigned FRAC, bool DSP2, unsigned RSB, class Act>
void load_offsets_rs(hls::stream<wgt_beat>& in, Fletcher& f, Act& act, const ap_int<RSB> rowsum[PE][NF]) {
  constexpr unsigned LW = TW + 1;
  constexpr unsigned OB = Act::OFF_W;
  typedef lane_cutter<LW, PE> cut_t;
  cut_t cut;
  cut.reset();
  unsigned a = 0;
  ap_uint<PE> sgn = 0;
chunks:
  for (unsigned i = 0; i < NF * cut_t::NC; i++) {
#pragma HLS PIPELINE II=1
    ap_uint<LW> v[cut_t::MAXL];
#pragma HLS ARRAY_PARTITION variable=v complete dim=1
    unsigned first = 0;
    const unsigned n = cut.push(wload_chunk(in, f), v, first);
    for (unsigned k = 0; k < cut_t::MAXL; k++) {
#pragma HLS UNROLL
      if (k < n) {
        const unsigned p = first + k;
        const ap_int<TW> val = ap_int<TW>(v[k].range(TW - 1, 0));
        const bool pos = v[k][TW];
        sgn[p] = pos;
        ap_int<OB> o = ap_int<OB>(val);
        if (DSP2) {
          const ap_int<OB> c = ap_int<OB>(ap_int<OB>(rowsum[p][a]) * 128) << FRAC;
          o = pos ? ap_int<OB>(o - c) : ap_int<OB>(o + c);
        }
        srom_put<OB>(act.offset[p][a], o);
      }
    }
    if (cut.done) {
      rom_writer<PE>::put(act.sign[a], sgn);
      sgn = 0;
      a++;
    }
  }
}

template <unsigned PE, unsigned NF, unsigned TW, unsigned FRAC, class Act>
void load_offsets(hls::stream<wgt_beat>& in, Fletcher& f, Act& act) {
  const ap_int<2> none[PE][NF] = {};
  load_offsets_rs<PE, NF, TW, FRAC, false, 2>(in, f, act, none);
}

}  // namespace cf

#pragma GCC diagnostic pop

#endif  // CF_WLOAD_H
