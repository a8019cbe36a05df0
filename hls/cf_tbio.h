// cfgen C-simulation test-bench helpers (g++ or Vitis csim; never synthesized):
// hex beats <-> ap_uint, line readers, per-stream mismatch statistics, JSON output.
#ifndef CF_TBIO_H
#define CF_TBIO_H

#include "cf_common.h"
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace cf_tb {

inline int hexval(const char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// "MSB first" hex string -> ap_uint<W>; false on a bad digit or a value wider than W bits.
template <unsigned W> bool parse_hex(const std::string& s, ap_uint<W>& v) {
  v = 0;
  const unsigned n = (unsigned)s.size();
  for (unsigned limb = 0; 16 * limb < n; limb++) {  // 16 digits = 64 bits at a time
    unsigned long long word = 0;
    const unsigned first = 16 * limb;
    const unsigned last = first + 16 < n ? first + 16 : n;
    for (unsigned i = last; i-- > first;) {
      const int nib = hexval(s[n - 1 - i]);
      if (nib < 0) return false;
      word = (word << 4) | (unsigned)nib;
    }
    const unsigned lo = 64 * limb;
    if (lo >= W) {
      if (word) return false;
      continue;
    }
    const unsigned hi = lo + 63 < W - 1 ? lo + 63 : W - 1;
    if (hi - lo < 63 && (word >> (hi - lo + 1))) return false;
    v.range(hi, lo) = word;
  }
  return true;
}

template <unsigned W> std::string to_hex(const ap_uint<W>& v) {
  const unsigned n = (W + 3) / 4;
  std::string s;
  for (unsigned lo = 0; lo < W; lo += 64) {
    const unsigned hi = lo + 63 < W - 1 ? lo + 63 : W - 1;
    char buf[20];
    std::snprintf(buf, sizeof buf, "%016llx", (unsigned long long)v.range(hi, lo).to_uint64());
    s = std::string(buf) + s;
  }
  return s.substr(s.size() - n);
}

// Non-empty lines of a text file, one at a time.
class LineReader {
 public:
  explicit LineReader(const std::string& path) : path_(path), f_(path.c_str()) {}
  bool ok() const { return f_.good(); }
  const std::string& path() const { return path_; }
  bool next(std::string& line) {
    while (std::getline(f_, line)) {
      while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
      if (!line.empty()) return true;
    }
    return false;
  }

 private:
  std::string path_;
  std::ifstream f_;
};

// Mismatch statistics of one stream, compared value by value (channel granularity).
struct Stats {
  std::string name;
  unsigned channels = 0;
  unsigned long beats = 0, values = 0, mismatches = 0;
  unsigned long missing = 0, extra = 0, bad_lines = 0;
  bool has_first = false;
  unsigned long first_frame = 0, first_pixel = 0, first_channel = 0;
  std::string first_expected, first_got;
  unsigned long errors() const { return mismatches + missing + extra + bad_lines; }
};

template <unsigned C, unsigned B>
void compare_beat(const ap_uint<C * B>& got, const ap_uint<C * B>& exp, const unsigned long frame,
                  const unsigned long pixel, Stats& st) {
  st.beats++;
  st.values += C;
  if (got == exp) return;
  for (unsigned c = 0; c < C; c++) {
    const ap_uint<B> g = got.range(c * B + B - 1, c * B);
    const ap_uint<B> e = exp.range(c * B + B - 1, c * B);
    if (g != e) {
      if (!st.has_first) {
        st.has_first = true;
        st.first_frame = frame;
        st.first_pixel = pixel;
        st.first_channel = c;
        st.first_expected = to_hex<B>(e);
        st.first_got = to_hex<B>(g);
      }
      st.mismatches++;
    }
  }
}

// Reads `frames*pix` beats from `s` and as many expected lines from `rd`; counts missing
// and extra beats; `frame0` numbers the first frame.
template <unsigned C, unsigned B>
void check_stream(hls::stream<ap_uint<C * B> >& s, LineReader& rd, const unsigned long frames, const unsigned long pix,
                  const unsigned long frame0, Stats& st) {
  st.channels = C;
  std::string line;
  for (unsigned long i = 0; i < frames * pix; i++) {
    ap_uint<C * B> exp = 0;
    if (!rd.next(line) || !parse_hex<C * B>(line, exp)) {
      st.bad_lines++;
      if (!s.empty()) (void)s.read();
      continue;
    }
    if (s.empty()) {
      st.missing++;
      continue;
    }
    compare_beat<C, B>(s.read(), exp, frame0 + i / pix, i % pix, st);
  }
  while (!s.empty()) {
    (void)s.read();
    st.extra++;
  }
}

inline std::string json_str(const std::string& s) {
  std::string o = "\"";
  for (const char c : s) {
    if (c == '"' || c == '\\') {
      o += '\\';
      o += c;
    } else if ((unsigned char)c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", (unsigned)(unsigned char)c);
      o += buf;
    } else {
      o += c;
    }
  }
  return o + "\"";
}

inline std::string json_stats(const Stats& st) {
  std::ostringstream o;
  o << "{\"name\": " << json_str(st.name) << ", \"channels\": " << st.channels << ", \"beats\": " << st.beats
    << ", \"values\": " << st.values << ", \"mismatches\": " << st.mismatches << ", \"missing_beats\": " << st.missing
    << ", \"extra_beats\": " << st.extra << ", \"bad_lines\": " << st.bad_lines;
  if (st.has_first)
    o << ", \"first_mismatch\": {\"frame\": " << st.first_frame << ", \"pixel\": " << st.first_pixel
      << ", \"channel\": " << st.first_channel << ", \"expected\": \"0x" << st.first_expected << "\", \"got\": \"0x"
      << st.first_got << "\"}";
  o << "}";
  return o.str();
}

// ---------------------------------------------------------------- run-time weights
// weights/weights.hex: one 8-digit hex word per line (docs/WEIGHTS.md). False on a bad line.
inline bool read_weight_words(const std::string& path, std::vector<unsigned>& words, std::string& err) {
  LineReader rd(path);
  if (!rd.ok()) {
    err = "cannot open " + path;
    return false;
  }
  std::string line;
  unsigned long n = 0;
  while (rd.next(line)) {
    n++;
    ap_uint<32> v = 0;
    if (line.size() > 8 || !parse_hex<32>(line, v)) {
      err = path + ": line " + std::to_string(n) + " is not a 32-bit hex word";
      return false;
    }
    words.push_back((unsigned)v.to_uint());
  }
  return true;
}

// The unsigned integer after "key": in a JSON text (the first occurrence), or after its '['
// for a list: index `at` of it. False when absent.
inline bool json_uint(const std::string& text, const std::string& key, unsigned at, unsigned long long& v) {
  size_t i = text.find("\"" + key + "\"");
  if (i == std::string::npos) return false;
  i = text.find(':', i);
  if (i == std::string::npos) return false;
  i++;
  while (i < text.size() && (text[i] == ' ' || text[i] == '\n')) i++;
  if (i < text.size() && text[i] == '[') {
    i++;
    for (unsigned k = 0; k < at; k++) {
      i = text.find(',', i);
      if (i == std::string::npos) return false;
      i++;
    }
  }
  while (i < text.size() && (text[i] == ' ' || text[i] == '\n')) i++;
  if (i >= text.size() || text[i] < '0' || text[i] > '9') return false;
  v = std::strtoull(text.c_str() + i, 0, 10);
  return true;
}

inline bool read_text(const std::string& path, std::string& text) {
  std::ifstream f(path.c_str());
  if (!f.good()) return false;
  std::ostringstream o;
  o << f.rdbuf();
  text = o.str();
  return true;
}

}  // namespace cf_tb

#endif  // CF_TBIO_H
