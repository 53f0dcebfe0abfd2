// A run's checkpoint: weights ("param/NAME"), optimiser state ("optim/NAME"), the step, the
// data position, the number of NaN rollbacks so far (they lower the lr) and the resolved config,
// in one atomically written HDF5 file.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

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

// Which checkpoints a replay visits: every one in step order, the one of `step`, or (neither)
// the newest that reads back intact.
struct CheckpointChoice {
  bool every = false;
  int64_t step = -1;
};
struct Replayed {
  size_t visited = 0;
  std::vector<std::string> skipped;  // unreadable checkpoints, skipped with a warning
  std::string str() const;           // "3 checkpoints; skipped 1 unreadable: PATH"
};
// The steps of the chosen checkpoints in the order a replay tries them (newest first when only
// the newest is wanted). Throws when the run has none, or none of `which.step`, naming `output`.
std::vector<int64_t> chosen_steps(const RunDir& dir, const CheckpointChoice& which, const std::string& output);
// Loads each chosen checkpoint into ps and calls visit(step, index, count). Throws as chosen_steps
// does, or when none reads back, saying that `output` was left as it was.
Replayed replay_checkpoints(const RunDir& dir, const CheckpointChoice& which, ParamStore& ps, const std::string& output,
                            const std::function<void(int64_t step, size_t index, size_t count)>& visit);

}  // namespace sl::train
