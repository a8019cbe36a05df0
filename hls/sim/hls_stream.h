// Minimal hls::stream<T> for C simulation with g++ (cfgen). Not used by Vitis HLS, which
// brings its own. Unbounded FIFO (like Vitis C simulation); reading an empty stream is a
// design error here: it prints the stream's name and exits with status 70 instead of
// returning garbage. Streams destroyed with data left in them are counted
// (hls::sim::leftover_streams()) and reported on stderr.
#ifndef CF_SIM_HLS_STREAM_H
#define CF_SIM_HLS_STREAM_H

#define CF_HLS_SIM_SHIM 1

#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <string>

namespace hls {

namespace sim {
inline unsigned long& leftover_counter() {
  static unsigned long n = 0;
  return n;
}
inline unsigned long leftover_streams() { return leftover_counter(); }
inline bool& quiet_leftover() {
  static bool q = false;
  return q;
}
}  // namespace sim

template <typename T> class stream {
 public:
  stream() : name_("unnamed") {}
  explicit stream(const char* name) : name_(name) {}
  stream(const stream&) = delete;
  stream& operator=(const stream&) = delete;
  ~stream() {
    if (!q_.empty()) {
      sim::leftover_counter()++;
      if (!sim::quiet_leftover())
        std::fprintf(stderr, "WARNING: hls::stream '%s' destroyed with %zu leftover beat(s)\n", name_.c_str(),
                     q_.size());
    }
  }

  bool empty() const { return q_.empty(); }
  bool full() const { return false; }
  std::size_t size() const { return q_.size(); }
  const char* name() const { return name_.c_str(); }

  T read() {
    if (q_.empty()) {
      std::fprintf(stderr, "ERROR: hls::stream '%s' read while empty (producer/consumer beat counts differ)\n",
                   name_.c_str());
      std::exit(70);
    }
    T v = q_.front();
    q_.pop_front();
    return v;
  }
  void read(T& v) { v = read(); }
  bool read_nb(T& v) {
    if (q_.empty()) return false;
    v = read();
    return true;
  }
  void write(const T& v) { q_.push_back(v); }
  bool write_nb(const T& v) {
    write(v);
    return true;
  }
  void operator>>(T& v) { v = read(); }
  void operator<<(const T& v) { write(v); }

 private:
  std::deque<T> q_;
  std::string name_;
};

}  // namespace hls

#endif  // CF_SIM_HLS_STREAM_H
