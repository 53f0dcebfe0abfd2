// The training loop: config -> data + model -> optimiser steps -> log.h5 and checkpoints.
// Nothing here is specific to one model: the task supplies the loss and the statistics.
#pragma once
#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/optim.h"
#include "engine/schedule.h"
#include "train/config.h"
#include "train/run_dir.h"
#include "train/task.h"

namespace sl::train {

struct TrainSummary {
  int64_t steps = 0;
  double train_loss = 0, val_loss = 0;
  double tokens_per_second = 0;
  bool already_complete = false;  // a resumed run whose checkpoint was at train.steps already
};

// What one optimiser step did.
struct StepResult {
  float lr = 0;
  double loss = 0;             // mean over the global batch
  float grad_norm = NAN;       // before clipping
  std::vector<LogRow> stats;   // the training forward's statistics, when asked for
  std::string fault;           // what went non-finite, by step, layer and tensor; "" if nothing
  int64_t forward_bytes = 0;   // live tensor bytes after the first micro-batch's forward
};

// The model with its data, optimiser and schedule, and one optimiser step over the global batch
// (micro-batches, data-parallel gradient sums, clipping, the update). `sinklab bench` times it.
class Trainer {
 public:
  explicit Trainer(const Config& cfg);
  // Step `step` (1-based); with_stats: the first micro-batch this rank trains measures the
  // statistics of its own forward (stats.source = train). Nothing is updated after a fault.
  StepResult step(int64_t step, bool with_stats);
  Task& task() { return *task_; }
  ParamStore& params() { return ps_; }
  Optimizer& optimizer() { return *opt_; }
  int64_t micro_batch() const { return micro_; }
  int64_t rollbacks = 0;  // each multiplies the lr by train.rollback_lr_factor

 private:
  const Config& cfg_;
  ParamStore ps_;
  std::unique_ptr<Task> task_;
  std::unique_ptr<Optimizer> opt_;
  LrSchedule sched_;
  int world_, rank_;
  int64_t batch_, micro_, accum_, bucket_bytes_;
  float grad_clip_;
  double rollback_factor_;
};

// Runs (or, with resume, continues) the run in `dir` until train.steps, or for at most
// `stop_after` steps in this invocation (> 0; a checkpoint is saved where it stops).
// A resumed run reads its own config.yaml. Every failure leaves the run resumable: checkpoints
// and log.h5 are replaced atomically (a kill, a full disk: the previous ones stay intact; a
// write error stops the run naming the file), and a non-finite value stops the run (or, with
// train.on_nan=rollback, rolls it back) before anything of its step is logged or saved.
TrainSummary train(const Config& cfg, const RunDir& dir, bool resume, int64_t stop_after = 0);

}  // namespace sl::train
