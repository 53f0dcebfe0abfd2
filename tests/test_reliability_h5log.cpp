// Run by tests/python/test_kill_h5log.py, which kills it with SIGKILL at random moments: appends
// rows to $SINKLAB_KILL_LOG as the trainer does (a dozen datasets, statistics rows and scalars),
// resuming the file if it exists, and flushes after every step, forever. Row values are a function
// of (dataset, step), so a reader can tell intact rows from garbage.
#include <catch2/catch.hpp>
#include <cstdlib>
#include <string>
#include <vector>

#include "engine/h5log.h"

TEST_CASE("endless log writer for the SIGKILL test", "[.h5log-kill-writer]") {
  const char* path = std::getenv("SINKLAB_KILL_LOG");
  REQUIRE(path);
  sl::H5Log log(path);
  // Resuming: like the trainer, continue after the last complete step of the file.
  int64_t step = std::atoll(std::getenv("SINKLAB_KILL_FROM") ? std::getenv("SINKLAB_KILL_FROM") : "0");
  log.truncate_after(step);
  std::vector<float> row(4 * 32);
  for (++step;; ++step) {
    for (int d = 0; d < 12; ++d) {
      for (size_t i = 0; i < row.size(); ++i) row[i] = (float)step * 0.001f + (float)d + (float)i * 1e-6f;
      log.append("attn/stat" + std::to_string(d), step, row.data(), {4, 32});
      log.append("train/scalar" + std::to_string(d), step, (float)step + (float)d);
    }
    log.flush();
  }
}
