// What the trainer trains: a model with its data. The decoder LM is one task; the ViT and the
// MoE decoder are others. The trainer sees only losses, statistics rows and data state.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "engine/params.h"
#include "train/config.h"

namespace sl::train {

// One row of a logged dataset: /name[step, shape...].
struct LogRow {
  std::string name;
  Shape shape;
  std::vector<float> values;
};

// A training micro-batch's loss and, when asked for, the statistics its own forward measured.
struct TrainLoss {
  Tensor loss;
  std::vector<LogRow> stats;
};

class Task {
 public:
  virtual ~Task() = default;
  // Loss of the next training micro-batch of `batch` sequences (draws it from the data). With
  // `with_stats` (stats.source = train) its forward also measures the statistics of its first
  // stats.probe_batch sequences and stats.probe_len positions, in the rows probe_stats() logs;
  // tasks that cannot throw.
  virtual TrainLoss train_loss(int64_t batch, bool with_stats) = 0;
  // Draws the next training micro-batch and drops it (another data-parallel rank trains on it).
  virtual void skip_train_batch(int64_t batch) = 0;
  // Validation metrics over `batches` fixed batches, without gradients; the first is the
  // validation loss ("val/loss"), others may follow ("val/accuracy", ...).
  virtual std::vector<std::pair<std::string, double>> evaluate(int64_t batches, int64_t batch) = 0;
  // Statistics on the fixed probe batch, without gradients.
  virtual std::vector<LogRow> probe_stats() = 0;
  // The full attention weights [B, S_q, S_k] of one layer and head on the probe batch (replay).
  virtual LogRow attention_map(int64_t layer, int64_t head) = 0;
  // Text generated from a prompt, for language models (others throw).
  virtual std::string sample(const std::string& prompt, int64_t tokens, float temperature, uint64_t seed);
  // Replaces the probe batch by windows of this text (replay --data), for language models.
  virtual void set_probe_text(const std::string& text);
  // Where the forward of the last train_loss() batch first turns non-finite with the current
  // weights, e.g. "block 2 hidden state" (it is re-run); "" if nowhere or the task cannot tell.
  virtual std::string diagnose_nonfinite() { return ""; }
  virtual int64_t tokens_per_sequence() const = 0;
  // The data position, for checkpoints: a resumed run must draw the same batches.
  virtual std::vector<int64_t> data_state() const = 0;
  virtual void set_data_state(const std::vector<int64_t>& s) = 0;
};

// Declares the model's parameters in `ps`, allocates and initialises them from train.seed, sets
// the engine's matmul precision from train.dtype, and opens the data. (Replay and sampling
// then overwrite the weights from a checkpoint.)
std::unique_ptr<Task> make_task(const Config& cfg, ParamStore& ps);

}  // namespace sl::train
