#include "train/progress.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>

namespace sl::train {

std::string format_duration(double s) {
  char buf[32];
  if (s >= 3600) std::snprintf(buf, sizeof buf, "%dh%02dm", (int)(s / 3600), (int)std::fmod(s / 60, 60));
  else std::snprintf(buf, sizeof buf, "%dm%02ds", (int)(s / 60), (int)std::fmod(s, 60));
  return buf;
}

Progress::Progress(std::string what, int64_t total)
    : what_(std::move(what)),
      total_(total),
      next_report_(total / 10),
      tty_(isatty(fileno(stdout))),
      start_(std::chrono::steady_clock::now()),
      last_(start_) {}

void Progress::advance(const std::string& detail, int64_t n) {
  done_ += n;
  const auto now = std::chrono::steady_clock::now();
  const bool due = tty_ ? now - last_ > std::chrono::milliseconds(250) || done_ == total_ : done_ >= next_report_;
  if (!due) return;
  last_ = now;
  while (next_report_ <= done_) next_report_ += std::max<int64_t>(total_ / 10, 1);
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  const double eta = done_ > 0 ? elapsed / done_ * (total_ - done_) : 0;
  std::printf("%s%s: %lld/%lld (%s) | %s elapsed | ETA %s%s", tty_ ? "\r" : "", what_.c_str(), (long long)done_,
              (long long)total_, detail.c_str(), format_duration(elapsed).c_str(), format_duration(eta).c_str(),
              tty_ ? "   " : "\n");
  std::fflush(stdout);
}

void Progress::finish() {
  if (tty_) std::printf("\n");
}

}  // namespace sl::train
