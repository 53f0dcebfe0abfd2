// Every dataset a run logs, declared once, the way train/schema.cpp declares config keys: its
// name in log.h5 (and replay.h5), its shape in symbolic axes, unit, a one-line doc and, for the
// statistics of a captured forward, the function that computes it. Adding a statistic means
// adding one entry to statistics.cpp (and its test); the log rows (train/stats_rows), the
// `sinklab stats --list` listing the plots read, the README's table and the sweep summary's
// columns follow from it.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "models/stats_input.h"

namespace sl::models {

// The symbolic axes of a row (a dataset is [steps, row...]).
enum class Axis { Layers, Heads, FirstK, Eps, Tokens, MoEBlocks, Experts, Sequences, Queries, Keys, Rows, Cols, Top };
inline constexpr Axis kAxes[] = {Axis::Layers,    Axis::Heads,   Axis::FirstK,    Axis::Eps,     Axis::Tokens,
                                 Axis::MoEBlocks, Axis::Experts, Axis::Sequences, Axis::Queries, Axis::Keys,
                                 Axis::Rows,      Axis::Cols,    Axis::Top};
const char* axis_name(Axis a);  // "layers", "heads", "first_k", ...
const char* axis_doc(Axis a);

// What a summary column is told about the run and the column.
struct SummaryContext {
  int64_t eps_index = 0;    // which stats.eps threshold, for a "{eps}" column
  int64_t first_token = 0;  // position of the first real token: 1 with attention.sink_token, else 0
  int64_t first_patch = 0;  // ViT: the token index of patch 0 (1 + registers)
};

// One column of a sweep's summary table (and of a run's curve): a value of each logged row of a
// statistic, and the step whose value the table shows.
struct SummaryColumn {
  enum class Over { Last, Max };  // the last logged row's value, or the largest over the rows
  std::string header;  // "{eps}" stands for each stats.eps threshold (%g): one column for each
  std::string format;  // printf format of the cell
  std::string doc;
  double (*of_row)(const float* row, const Shape& shape, const SummaryContext& c);  // NaN: no value
  Over over = Over::Last;
};

struct Statistic {
  std::string name{};  // the dataset; "{layer}" / "{head}" are filled in for per-head datasets
  std::vector<Axis> shape{};
  std::string unit{};
  std::string doc{};
  // From a capture; empty for what the trainer or the task logs itself (losses, maps, ...).
  std::function<std::vector<float>(const StatsInput& in)> compute{};
  // Whether it is logged for this capture; empty: always.
  std::function<bool(const StatsInput& in)> logged{};
  // The paper's version of another statistic: where both are logged, reports read this one.
  std::string supersedes{};
  std::vector<SummaryColumn> summary{};
};

// Every dataset, in the order listings and summaries show them.
const std::vector<Statistic>& statistics();
// The statistic named `name` (a "train_batch/" prefix is ignored), or nullptr.
const Statistic* find_statistic(const std::string& name);

// The row shape of a statistic for this capture.
Shape row_shape(const Statistic& s, const StatsInput& in);
// s.compute(in), checked against row_shape.
std::vector<float> compute(const Statistic& s, const StatsInput& in);
// The values of the statistic named `name` (throws naming it if it is unknown or not logged here).
std::vector<float> compute(const std::string& name, const StatsInput& in);

// What a report reads for `s`: the statistic that supersedes it where is_logged(its name), else s.
const Statistic& reported(const Statistic& s, const std::function<bool(const std::string&)>& is_logged);

// The columns of a sweep summary in order, "{eps}" expanded for each threshold: a statistic's
// columns for the first threshold, then for the next, ...
struct SummaryCell {
  std::string header;         // "sink@0.3"
  const Statistic* statistic;  // whose rows it reduces (a report reads reported(*statistic, ...))
  const SummaryColumn* column;
  int64_t eps_index;
};
std::vector<SummaryCell> summary_cells(const std::vector<double>& eps);

// The dataset of the full attention weights of one layer and head (stats.maps, replay --save-maps).
std::string attention_map_name(int64_t layer, int64_t head);

}  // namespace sl::models
