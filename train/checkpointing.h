// A run's checkpoint: weights ("param/NAME"), optimiser state ("optim/NAME"), the step, the
// data position, the number of NaN rollbacks so far (they lower the lr) and the resolved config,
// in one atomically written HDF5 file.
#pragma once
#include <cstdint>
#include <string>

#include "engine/checkpoint.h"
#include "engine/optim.h"
#include "train/config.h"
#include "train/run_dir.h"
#include "train/task.h"

namespace sl::train {

void save_run_checkpoint(const RunDir& dir, int64_t step, int64_t rollbacks, ParamStore& ps, Optimizer& opt,
                         Task& task, const Config& cfg);
// Copies the weights of `ck` (read from `path`) into ps, checking names and shapes.
void load_params(const Checkpoint& ck, ParamStore& ps, const std::string& path);
struct Restored {
  bool found = false;     // false when there was no checkpoint: ps, opt and task are untouched
  int64_t step = 0;
  int64_t rollbacks = 0;  // as saved (0 in checkpoints written before rollbacks existed)
};
// Restores the newest checkpoint before step `before` that reads back intact (corrupt ones are
// skipped with a warning).
Restored restore_latest(const RunDir& dir, ParamStore& ps, Optimizer& opt, Task& task,
                        int64_t before = INT64_MAX);

}  // namespace sl::train
