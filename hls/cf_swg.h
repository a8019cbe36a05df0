// cfgen HLS: sliding-window generator (convolution input generator) with padding.
//
// in : pixel beats ap_uint<IFM_CH*IN_BITS>, raster order, IFM_H*IFM_W per frame.
// out (TAPS = 1): for every output pixel (raster order) the K*K*IFM_CH window taps in
//      (ky, kx, c) order, SIMD channels per beat: OFM_H*OFM_W*K*K*(IFM_CH/SIMD) beats per
//      frame.
// out (TAPS = K, row taps, needs SIMD = IFM_CH): for every output pixel and ky = 0..K-1 one
//      beat of K*IFM_CH*IN_BITS bits holding the window row (iy = oy*S-P+ky, ix = ox*S-P+kx)
//      for kx = 0..K-1, tap kx at bits [kx*PB, (kx+1)*PB) (PB = IFM_CH*IN_BITS): K beats per
//      output pixel, OFM_H*OFM_W*K per frame. The flattened (ky, kx, c) order is unchanged.
// Out-of-image taps take the matching channels of `pad_pixel`.
//
// A ring of K+STRIDE line buffers: while output row oy is emitted the next STRIDE input
// rows are read, so the unit sustains max(EMIT, STRIDE*IFM_W) cycles per output row, EMIT =
// K*K*IFM_CH/SIMD*OFM_W (TAPS = 1) or K*OFM_W (TAPS = K). Rows that no window uses (bottom
// rows skipped by the stride) are consumed. With TAPS = K the line buffer is partitioned
// cyclically by K along the columns: the K consecutive pixels of a window row lie in K
// different banks, one read each per cycle, rotated into tap order.
#ifndef CF_SWG_H
#define CF_SWG_H

#include "cf_common.h"

// Loop labels name the loops in HLS reports; g++ would flag them as unused.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-label"

namespace cf {

namespace detail {
// Number of input rows that must have been read before output row `oy` can be emitted.
constexpr int swg_rows_needed(int oy, int K, int S, int P, int H) {
  return (oy * S - P + K) < 0 ? 0 : ((oy * S - P + K) > H ? H : (oy * S - P + K));
}

// Write the next input pixel into the ring of line buffers (slot wslot, column wx).
template <unsigned NROWS, unsigned IFM_W, class pix_t, class stream_t>
inline void swg_push(pix_t (&buf)[NROWS][IFM_W], stream_t& in, unsigned& wslot, unsigned& wx) {
#pragma HLS INLINE
  buf[wslot][wx] = in.read();
  if (++wx == IFM_W) {
    wx = 0;
    if (++wslot == NROWS) wslot = 0;
  }
}

// TAPS = 1: one beat = SIMD channels of one tap.
template <unsigned K, unsigned STRIDE, unsigned PAD, unsigned IFM_CH, unsigned IFM_H, unsigned IFM_W,
          unsigned IN_BITS, unsigned SIMD>
void swg_pixels(hls::stream<ap_uint<IFM_CH * IN_BITS> >& in, hls::stream<ap_uint<SIMD * IN_BITS> >& out,
                const typename rom<IFM_CH * IN_BITS>::type& pad_pixel, const unsigned reps) {
#pragma HLS INLINE
  constexpr unsigned OFM_H = (IFM_H + 2 * PAD - K) / STRIDE + 1;
  constexpr unsigned OFM_W = (IFM_W + 2 * PAD - K) / STRIDE + 1;
  constexpr unsigned CF = IFM_CH / SIMD;
  constexpr unsigned NROWS = K + STRIDE;
  constexpr unsigned PB = IFM_CH * IN_BITS;
  constexpr unsigned OB = SIMD * IN_BITS;
  constexpr unsigned EMIT = OFM_W * K * K * CF;
  typedef ap_uint<PB> pix_t;

  pix_t buf[NROWS][IFM_W];
#pragma HLS BIND_STORAGE variable=buf type=ram_2p
#pragma HLS DEPENDENCE variable=buf inter false
#pragma HLS DEPENDENCE variable=buf intra false
  const pix_t padv = rom_reader<PB>::get(pad_pixel);

frames:
  for (unsigned r = 0; r < reps; r++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=1
    unsigned wslot = 0, wx = 0;  // where the next input pixel goes
    unsigned pix_read = 0;       // input pixels of this frame read so far
    const unsigned prefill = (unsigned)detail::swg_rows_needed(0, K, STRIDE, PAD, IFM_H) * IFM_W;
  prefill_rows:
    for (; pix_read < prefill; pix_read++) {
#pragma HLS PIPELINE II=1
      swg_push(buf, in, wslot, wx);
    }
    int top = -(int)PAD;                                  // input row of window row ky = 0
    unsigned top_slot = (NROWS - PAD % NROWS) % NROWS;    // its line-buffer slot
  out_rows:
    for (unsigned oy = 0; oy < OFM_H; oy++) {
      const unsigned target =
          (oy + 1 < OFM_H ? (unsigned)detail::swg_rows_needed((int)oy + 1, K, STRIDE, PAD, IFM_H) : IFM_H) * IFM_W;
      unsigned cf = 0, kx = 0, ky = 0, slot = top_slot;
      int left = -(int)PAD;
    emit:
      for (unsigned e = 0; e < EMIT; e++) {
#pragma HLS PIPELINE II=1
        if (pix_read < target) {  // read ahead the rows of the next output row
          swg_push(buf, in, wslot, wx);
          pix_read++;
        }
        const int iy = top + (int)ky;
        const int ix = left + (int)kx;
        pix_t p = padv;
        if (iy >= 0 && iy < (int)IFM_H && ix >= 0 && ix < (int)IFM_W) p = buf[slot][ix];
        if (CF == 1)
          out.write(ap_uint<OB>(p));
        else
          out.write(ap_uint<OB>(p.range(cf * OB + OB - 1, cf * OB)));
        if (++cf == CF) {
          cf = 0;
          if (++kx == K) {
            kx = 0;
            slot = (slot + 1 == NROWS) ? 0 : slot + 1;
            if (++ky == K) {
              ky = 0;
              slot = top_slot;
              left += (int)STRIDE;
            }
          }
        }
      }
    drain:
      for (; pix_read < target; pix_read++) {
#pragma HLS PIPELINE II=1
        swg_push(buf, in, wslot, wx);
      }
      top += (int)STRIDE;
      top_slot += STRIDE;
      if (top_slot >= NROWS) top_slot -= NROWS;
    }
  }
}

// TAPS = K: one beat = the K pixels of one window row (SIMD = IFM_CH).
template <unsigned K, unsigned STRIDE, unsigned PAD, unsigned IFM_CH, unsigned IFM_H, unsigned IFM_W,
          unsigned IN_BITS>
void swg_rows(hls::stream<ap_uint<IFM_CH * IN_BITS> >& in, hls::stream<ap_uint<K * IFM_CH * IN_BITS> >& out,
              const typename rom<IFM_CH * IN_BITS>::type& pad_pixel, const unsigned reps) {
#pragma HLS INLINE
  constexpr unsigned OFM_H = (IFM_H + 2 * PAD - K) / STRIDE + 1;
  constexpr unsigned OFM_W = (IFM_W + 2 * PAD - K) / STRIDE + 1;
  constexpr unsigned NROWS = K + STRIDE;
  constexpr unsigned PB = IFM_CH * IN_BITS;
  constexpr unsigned OB = K * PB;
  constexpr unsigned EMIT = OFM_W * K;
  // left column of a window = lq*K + lr (0 <= lr < K): bank b holds its column lq*K + b
  // (b >= lr) or lq*K + K + b (b < lr), i.e. tap kx = (b - lr) mod K.
  constexpr int LQ0 = -(int)((PAD + K - 1) / K);
  constexpr unsigned LR0 = (K - PAD % K) % K;
  constexpr unsigned SQ = STRIDE / K, SR = STRIDE % K;
  typedef ap_uint<PB> pix_t;

  pix_t buf[NROWS][IFM_W];
#pragma HLS BIND_STORAGE variable=buf type=ram_2p
#pragma HLS ARRAY_PARTITION variable=buf cyclic factor=K dim=2
#pragma HLS DEPENDENCE variable=buf inter false
#pragma HLS DEPENDENCE variable=buf intra false
  const pix_t padv = rom_reader<PB>::get(pad_pixel);

rows_frames:
  for (unsigned r = 0; r < reps; r++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=1
    unsigned wslot = 0, wx = 0;  // where the next input pixel goes
    unsigned pix_read = 0;       // input pixels of this frame read so far
    const unsigned prefill = (unsigned)swg_rows_needed(0, K, STRIDE, PAD, IFM_H) * IFM_W;
  rows_prefill:
    for (; pix_read < prefill; pix_read++) {
#pragma HLS PIPELINE II=1
      swg_push(buf, in, wslot, wx);
    }
    int top = -(int)PAD;                                  // input row of window row ky = 0
    unsigned top_slot = (NROWS - PAD % NROWS) % NROWS;    // its line-buffer slot
  rows_out_rows:
    for (unsigned oy = 0; oy < OFM_H; oy++) {
      const unsigned target =
          (oy + 1 < OFM_H ? (unsigned)swg_rows_needed((int)oy + 1, K, STRIDE, PAD, IFM_H) : IFM_H) * IFM_W;
      unsigned ky = 0, slot = top_slot;
      int lq = LQ0;
      unsigned lr = LR0;
    rows_emit:
      for (unsigned e = 0; e < EMIT; e++) {
#pragma HLS PIPELINE II=1
        if (pix_read < target) {  // read ahead the rows of the next output row
          swg_push(buf, in, wslot, wx);
          pix_read++;
        }
        const int iy = top + (int)ky;
        const bool row_in = iy >= 0 && iy < (int)IFM_H;
        pix_t bank[K];
#pragma HLS ARRAY_PARTITION variable=bank complete
      rows_banks:
        for (unsigned b = 0; b < K; b++) {
#pragma HLS UNROLL
          const int q = lq + (b < lr ? 1 : 0);
          const int col = q * (int)K + (int)b;
          bank[b] = (row_in && col >= 0 && col < (int)IFM_W) ? buf[slot][q * K + b] : padv;
        }
        ap_uint<OB> beat;
      rows_taps:
        for (unsigned kx = 0; kx < K; kx++) {
#pragma HLS UNROLL
          const unsigned b = (lr + kx < K) ? lr + kx : lr + kx - K;
          beat.range(kx * PB + PB - 1, kx * PB) = bank[b];
        }
        out.write(beat);
        slot = (slot + 1 == NROWS) ? 0 : slot + 1;
        if (++ky == K) {
          ky = 0;
          slot = top_slot;
          lq += (int)SQ;
          lr += SR;
          if (lr >= K) {
            lr -= K;
            lq++;
          }
        }
      }
    rows_drain:
      for (; pix_read < target; pix_read++) {
#pragma HLS PIPELINE II=1
        swg_push(buf, in, wslot, wx);
      }
      top += (int)STRIDE;
      top_slot += STRIDE;
      if (top_slot >= NROWS) top_slot -= NROWS;
    }
  }
}

template <bool ROWS> struct swg_select {
  template <unsigned K, unsigned STRIDE, unsigned PAD, unsigned IFM_CH, unsigned IFM_H, unsigned IFM_W,
            unsigned IN_BITS, unsigned SIMD>
  static void run(hls::stream<ap_uint<IFM_CH * IN_BITS> >& in, hls::stream<ap_uint<SIMD * IN_BITS> >& out,
                  const typename rom<IFM_CH * IN_BITS>::type& pad_pixel, const unsigned reps) {
#pragma HLS INLINE
    swg_pixels<K, STRIDE, PAD, IFM_CH, IFM_H, IFM_W, IN_BITS, SIMD>(in, out, pad_pixel, reps);
  }
};
template <> struct swg_select<true> {
  template <unsigned K, unsigned STRIDE, unsigned PAD, unsigned IFM_CH, unsigned IFM_H, unsigned IFM_W,
            unsigned IN_BITS, unsigned SIMD>
  static void run(hls::stream<ap_uint<IFM_CH * IN_BITS> >& in, hls::stream<ap_uint<K * IFM_CH * IN_BITS> >& out,
                  const typename rom<IFM_CH * IN_BITS>::type& pad_pixel, const unsigned reps) {
#pragma HLS INLINE
    swg_rows<K, STRIDE, PAD, IFM_CH, IFM_H, IFM_W, IN_BITS>(in, out, pad_pixel, reps);
  }
};
}  // namespace detail

// TAPS = 1 (default): SIMD channels of one tap per beat; TAPS = K (SIMD = IFM_CH): one
// whole window row (K pixels, kx = 0 lowest) per beat. See the header comment.
template <unsigned K, unsigned STRIDE, unsigned PAD, unsigned IFM_CH, unsigned IFM_H, unsigned IFM_W,
          unsigned IN_BITS, unsigned SIMD, unsigned TAPS = 1>
void sliding_window(hls::stream<ap_uint<IFM_CH * IN_BITS> >& in,
                    hls::stream<ap_uint<TAPS * SIMD * IN_BITS> >& out,
                    const typename rom<IFM_CH * IN_BITS>::type& pad_pixel, const unsigned reps) {
  static_assert(K >= 1 && STRIDE >= 1, "kernel and stride must be >= 1");
  static_assert(SIMD >= 1 && IFM_CH % SIMD == 0, "SIMD must divide the input channels");
  static_assert(IFM_H + 2 * PAD >= K && IFM_W + 2 * PAD >= K, "kernel larger than the padded image");
  static_assert(TAPS == 1 || TAPS == K, "TAPS must be 1 or K");
  static_assert(TAPS == 1 || SIMD == IFM_CH, "row taps (TAPS = K) need SIMD = IFM_CH");
  detail::swg_select<(TAPS > 1)>::template run<K, STRIDE, PAD, IFM_CH, IFM_H, IFM_W, IN_BITS, TAPS * SIMD>(
      in, out, pad_pixel, reps);
}

}  // namespace cf

#pragma GCC diagnostic pop

#endif  // CF_SWG_H
