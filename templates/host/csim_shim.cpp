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
int cfgen_run(const uint8_t* in, size_t in_len, size_t in_beats, uint8_t* out, size_t out_len,
              size_t out_beats, unsigned reps) {
  if (in_len != (size_t)reps * in_beats * IN_BYTES || out_len != (size_t)reps * out_beats * OUT_BYTES) return -1;
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
  CFGEN_TOP(s_in, s_out, reps);
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

}  // extern "C"
