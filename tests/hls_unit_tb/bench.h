// Generic drivers of the HLS unit test benches (tests/test_hls_units.py generates the
// configurations that call them). Protocol: argv = CONFIG FRAMES; stdin: input beats as
// hex lines; stdout: output beats as hex lines (or unit-specific text). Exit 3 when the
// unit left input unconsumed or a stream with data behind.
#ifndef CF_UNIT_BENCH_H
#define CF_UNIT_BENCH_H

#include "cfgen.h"
#include "cf_tbio.h"

#include <cstdio>
#include <iostream>
#include <string>

namespace cf_bench {

template <unsigned W> bool read_beats(hls::stream<ap_uint<W> >& s, const unsigned long n) {
  std::string line;
  for (unsigned long i = 0; i < n; i++) {
    ap_uint<W> v;
    if (!std::getline(std::cin, line) || !cf_tb::parse_hex<W>(line, v)) {
      std::fprintf(stderr, "bench: bad or missing input line %lu\n", i + 1);
      return false;
    }
    s.write(v);
  }
  return true;
}

template <unsigned W> void write_beats(hls::stream<ap_uint<W> >& s) {
  while (!s.empty()) std::printf("%s\n", cf_tb::to_hex<W>(s.read()).c_str());
}

// Test hook: when non-zero, units run with this many reps whatever the frames fed.
inline unsigned& reps_override() {
  static unsigned r = 0;
  return r;
}

// A unit with signature f(in, out, reps): IN_BEATS input beats per frame.
template <unsigned IN_W, unsigned OUT_W, class F> int run(F f, const unsigned frames, const unsigned long in_beats) {
  hls::stream<ap_uint<IN_W> > in("bench.in");
  hls::stream<ap_uint<OUT_W> > out("bench.out");
  if (!read_beats<IN_W>(in, frames * in_beats)) return 2;
  f(in, out, reps_override() ? reps_override() : frames);
  const bool left = !in.empty();
  write_beats<OUT_W>(out);
  if (left) {
    std::fprintf(stderr, "bench: %zu input beats left unconsumed\n", in.size());
    return 3;
  }
  return 0;
}

// AXI adapters: stdin "HEX LAST" per input beat (packets of any length) -> axis_to_stream
// (TLAST resynchronisation, `frames` frames) -> stream_to_axis; prints
// "data keep strb last user" per output beat.
template <unsigned BEAT, unsigned AXI, unsigned BEATS> int run_axis(const unsigned frames) {
  hls::stream<ap_axiu<AXI, 0, 0, 0> > ain("axis in");
  hls::stream<ap_uint<BEAT> > mid("mid");
  hls::stream<ap_uint<1> > flags("flags");
  hls::stream<ap_axiu<AXI, 1, 0, 0> > aout("axis out");
  std::string line;
  for (unsigned long n = 1; std::getline(std::cin, line); n++) {
    const std::string::size_type sp = line.find(' ');
    ap_uint<BEAT> v;
    if (sp == std::string::npos || !cf_tb::parse_hex<BEAT>(line.substr(0, sp), v)) {
      std::fprintf(stderr, "bench: bad input line %lu\n", n);
      return 2;
    }
    ap_axiu<AXI, 0, 0, 0> b;
    b.data = 0;
    b.data.range(BEAT - 1, 0) = v;
    b.keep = -1;
    b.strb = -1;
    b.last = line.substr(sp + 1) == "1" ? 1 : 0;
    ain.write(b);
  }
  cf::axis_to_stream<BEAT, AXI, BEATS>(ain, mid, flags, frames);
  cf::stream_to_axis<BEAT, AXI, BEATS>(mid, flags, aout, frames);
  while (!aout.empty()) {
    const ap_axiu<AXI, 1, 0, 0> b = aout.read();
    std::printf("%s %s %s %d %d\n", cf_tb::to_hex<AXI>(b.data).c_str(), cf_tb::to_hex<(AXI + 7) / 8>(b.keep).c_str(),
                cf_tb::to_hex<(AXI + 7) / 8>(b.strb).c_str(), (int)b.last, (int)b.user);
  }
  return ain.empty() && mid.empty() && flags.empty() ? 0 : 3;
}

// popcount (C-simulation path) and popcount_tree (synthesis path) of each input word.
template <unsigned N> int run_popcount(const unsigned count) {
  hls::stream<ap_uint<N> > s("words");
  if (!read_beats<N>(s, count)) return 2;
  while (!s.empty()) {
    const ap_uint<N> x = s.read();
    std::printf("%u %u\n", (unsigned)cf::popcount<N>(x), (unsigned)cf::popcount_tree<N>(x));
  }
  return 0;
}

}  // namespace cf_bench

#endif
