// The training loop: config -> data + model -> optimiser steps -> log.h5 and checkpoints.
// Nothing here is specific to one model: the LM task supplies the loss and the statistics.
#pragma once
#include <cstdint>
#include <string>

#include "train/config.h"
#include "train/run_dir.h"

namespace sl::train {

struct TrainSummary {
  int64_t steps = 0;
  double train_loss = 0, val_loss = 0;
  double sink_rate = 0;  // Sink_1^eps (first eps) on the probe batch at the end, percent
  double tokens_per_second = 0;
};

// Runs (or, with resume, continues) the run in `dir` until train.steps, or for at most
// `stop_after` steps in this invocation (> 0; a checkpoint is saved where it stops).
// A resumed run reads its own config.yaml. Every failure leaves the run resumable: checkpoints
// and log.h5 are replaced atomically (a kill, a full disk: the previous ones stay intact; a
// write error stops the run naming the file), and a non-finite value stops the run (or, with
// train.on_nan=rollback, rolls it back) before anything of its step is logged or saved.
TrainSummary train(const Config& cfg, const RunDir& dir, bool resume, int64_t stop_after = 0);

}  // namespace sl::train
