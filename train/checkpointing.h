// A run's checkpoint: weights ("param/NAME"), optimiser state ("optim/NAME"), the step, the
// data position and the resolved config, in one atomically written HDF5 file.
#pragma once
#include <string>

#include "engine/checkpoint.h"
#include "engine/optim.h"
#include "train/config.h"
#include "train/run_dir.h"
#include "train/task.h"

namespace sl::train {

void save_run_checkpoint(const RunDir& dir, int64_t step, ParamStore& ps, Optimizer& opt, Task& task,
                         const Config& cfg);
// Copies the weights of `ck` (read from `path`) into ps, checking names and shapes.
void load_params(const Checkpoint& ck, ParamStore& ps, const std::string& path);
// Restores the newest checkpoint that reads back intact (corrupt ones are skipped with a
// warning); returns its step, or 0 if there is none.
int64_t restore_latest(const RunDir& dir, ParamStore& ps, Optimizer& opt, Task& task);

}  // namespace sl::train
