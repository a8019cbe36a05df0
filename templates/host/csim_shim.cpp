// cfgen host driver: C-simulation shared library (extern "C") around the generated HLS top.
//
// Compiled by cfgen_driver.backends.CSimBackend together with OUT/hls/src/<top>.cpp:
//   g++ -shared -fPIC -DCFGEN_TOP=<top> -DCFGEN_TOP_HEADER='"<top>.h"' csim_shim.cpp <top>.cpp
// The top's prototype is read from its declaration (decltype), so the shim only needs its
// name: void TOP(hls::stream<ap_axiu<IN_AXI,...>>& in, hls::stream<ap_axiu<OUT_AXI,...>>& out, reps).
//
// cfgen_run() feeds `reps` frames of packed bytes (docs/CONTRACT.md: one beat per pixel,
// TDATA = beat padded to whole bytes, little-endian) into the input stream, calls the top
// once with reps frames, and drains the output stream into a byte buffer, checking the beat
// count and TLAST (last beat of every frame). It never reads an empty stream itself, so a
// mismatch comes back as an error code instead of the stream shim's exit().
//
// Run-time weights (the top header defines CF_RUNTIME_WEIGHTS, docs/WEIGHTS.md): the top is
//   void TOP(in, out, wgt_stream, wstat_stream, unsigned reps, unsigned mode)
// and the library also exports
//   int cfgen_load_weights(const uint32_t* words, size_t n_words, uint32_t status[2])
// which sends the words through the weight port (mode 1) and returns the status words s1, s2;
// cfgen_run() then runs in mode 0. Only such a library has that symbol.
#include CFGEN_TOP_HEADER

#include <hls_stream.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

namespace {

template <typename F> struct top_args;
template <typename A, typename B, typename R> struct top_args<void(A&, B&, R)> {
  typedef A in_stream;
  typedef B out_stream;
};
template <typename A, typename B, typename W, typename S, typename R, typename M>
struct top_args<void(A&, B&, W&, S&, R, M)> {
  typedef A in_stream;
  typedef B out_stream;
  typedef W wgt_stream;
  typedef S wstat_stream;
};
template <typename S> struct stream_elem;
template <typename T> struct stream_elem<hls::stream<T> > { typedef T type; };
template <int W> constexpr int uint_width(const ap_uint<W>*) { return W; }

typedef top_args<decltype(CFGEN_TOP)>::in_stream InStream;
typedef top_args<decltype(CFGEN_TOP)>::out_stream OutStream;
typedef stream_elem<InStream>::type InBeat;
typedef stream_elem<OutStream>::type OutBeat;
constexpr int IN_AXI = uint_width(static_cast<decltype(InBeat().data)*>(nullptr));
constexpr int OUT_AXI = uint_width(static_cast<decltype(OutBeat().data)*>(nullptr));
static_assert(IN_AXI % 8 == 0 && OUT_AXI % 8 == 0, "AXI-stream TDATA must be whole bytes");
constexpr int IN_BYTES = IN_AXI / 8;
constexpr int OUT_BYTES = OUT_AXI / 8;

#ifdef CF_RUNTIME_WEIGHTS
typedef top_args<decltype(CFGEN_TOP)>::wgt_stream WgtStream;
typedef top_args<decltype(CFGEN_TOP)>::wstat_stream WstatStream;
typedef stream_elem<WgtStream>::type WgtBeat;
typedef stream_elem<WstatStream>::type WstatBeat;
bool weights_loaded = false;  // the top runs frames only after a load
#endif

}  // namespace

extern "C" {

// Port widths as compiled, for the driver to check against cfgen_meta.json.
int cfgen_in_beat_bytes(void) { return IN_BYTES; }
int cfgen_out_beat_bytes(void) { return OUT_BYTES; }

// Returns 0 on success, or:
//  -1  in_len is not reps * in_beats * IN_BYTES, or out_len not reps * out_beats * OUT_BYTES
//  -2  the top produced a different number of output beats than reps * out_beats
//  -3  TLAST is not set exactly on the last beat of every frame
//  -4  the top left input beats unread
//  -7  run-time weights: no load has completed yet (cfgen_load_weights first)
int cfgen_run(const uint8_t* in, size_t in_len, size_t in_beats, uint8_t* out, size_t out_len,
              size_t out_beats, unsigned reps) {
  if (in_len != (size_t)reps * in_beats * IN_BYTES || out_len != (size_t)reps * out_beats * OUT_BYTES) return -1;
#ifdef CF_RUNTIME_WEIGHTS
  if (!weights_loaded) return -7;
#endif
  hls::sim::quiet_leftover() = true;
  InStream s_in("cfgen_host_in");
  OutStream s_out("cfgen_host_out");
  const size_t n_in = (size_t)reps * in_beats;
  for (size_t i = 0; i < n_in; i++) {
    InBeat b;
    b.data = 0;
    const uint8_t* p = in + i * IN_BYTES;
    for (int k = 0; k < IN_BYTES; k++) b.data.range(8 * k + 7, 8 * k) = p[k];
    b.keep = -1;
    b.strb = -1;
    b.last = (i % in_beats == in_beats - 1) ? 1 : 0;
    s_in.write(b);
  }
#ifdef CF_RUNTIME_WEIGHTS
  WgtStream s_wgt("cfgen_host_wgt");
  WstatStream s_wstat("cfgen_host_wstat");
  CFGEN_TOP(s_in, s_out, s_wgt, s_wstat, reps, CF_MODE_RUN);
#else
  CFGEN_TOP(s_in, s_out, reps);
#endif
  int rc = 0;
  const size_t n_out = (size_t)reps * out_beats;
  if (s_out.size() != n_out) rc = -2;
  for (size_t i = 0; i < n_out && !s_out.empty(); i++) {
    const OutBeat b = s_out.read();
    uint8_t* p = out + i * OUT_BYTES;
    for (int k = 0; k < OUT_BYTES; k++) p[k] = (uint8_t)b.data.range(8 * k + 7, 8 * k).to_uint();
    const bool want_last = (i % out_beats == out_beats - 1);
    if (rc == 0 && (bool)b.last != want_last) rc = -3;
  }
  if (rc == 0 && !s_in.empty()) rc = -4;
  while (!s_in.empty()) s_in.read();
  while (!s_out.empty()) s_out.read();
  return rc;
}

#ifdef CF_RUNTIME_WEIGHTS
// Number of 32-bit words one load takes (weights.json "words").
unsigned long cfgen_weight_words(void) { return CF_WEIGHT_WORDS; }

// Sends n_words words through the weight port (the top in mode 1) and stores the status it
// answers, s1 and s2, in status[0], status[1] (the driver compares them with weights.json's
// checksum). Returns 0, or:
//  -1  n_words is not CF_WEIGHT_WORDS (nothing is sent)
//  -5  the status stream did not hold exactly two beats, TLAST on the second only
//  -6  the top left weight words unread
// A later cfgen_run() uses the loaded tables; a load may be repeated at any time.
int cfgen_load_weights(const uint32_t* words, size_t n_words, uint32_t* status) {
  if (n_words != (size_t)CF_WEIGHT_WORDS || (n_words && !words) || !status) return -1;
  hls::sim::quiet_leftover() = true;
  InStream s_in("cfgen_host_in");
  OutStream s_out("cfgen_host_out");
  WgtStream s_wgt("cfgen_host_wgt");
  WstatStream s_wstat("cfgen_host_wstat");
  for (size_t i = 0; i < n_words; i++) {
    WgtBeat b;
    b.data = words[i];
    b.keep = -1;
    b.strb = -1;
    b.last = (i == n_words - 1) ? 1 : 0;
    s_wgt.write(b);
  }
  CFGEN_TOP(s_in, s_out, s_wgt, s_wstat, 0, CF_MODE_LOAD);
  int rc = 0;
  if (s_wstat.size() != 2) rc = -5;
  for (unsigned k = 0; k < 2 && !s_wstat.empty(); k++) {
    const WstatBeat b = s_wstat.read();
    status[k] = (uint32_t)b.data.to_uint();
    if ((bool)b.last != (k == 1) && rc == 0) rc = -5;
  }
  if (rc == 0 && !s_wgt.empty()) rc = -6;
  while (!s_wgt.empty()) s_wgt.read();
  while (!s_wstat.empty()) s_wstat.read();
  if (rc == 0) weights_loaded = true;
  return rc;
}
#endif

}  // extern "C"
