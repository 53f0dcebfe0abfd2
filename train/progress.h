// Progress of long work on stdout, with the elapsed time and an ETA from the rate so far: one
// line redrawn in place on a terminal, else a line at every tenth of the work.
#pragma once
#include <chrono>
#include <cstdint>
#include <string>

namespace sl::train {

// "4m05s", "2h13m".
std::string format_duration(double seconds);

class Progress {
 public:
  Progress(std::string what, int64_t total);
  // `n` more units done; `detail` says what is running now.
  void advance(const std::string& detail, int64_t n = 1);
  // Ends the line (on a terminal).
  void finish();

 private:
  std::string what_;
  int64_t total_, done_ = 0;
  int64_t next_report_;  // without a terminal: the next unit count to print at
  bool tty_;
  std::chrono::steady_clock::time_point start_, last_;
};

}  // namespace sl::train
