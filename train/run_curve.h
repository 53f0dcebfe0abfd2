// A run's headline statistics at its logged steps, read from its log.h5: what a sweep's summary
// row and its per-run curve (runs/SWEEP/curves/RUN.csv, committed as
// experiments/results/curves/SWEEP/RUN.csv) are made of. The columns are the summary columns the
// statistics declare (models/statistics.h), each reading the statistic a report reads: the paper's
// proxy weights |w| / sum |w| where the run logged them (kernels whose weights are no
// distribution), else the weights.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "models/statistics.h"
#include "train/config.h"
#include "train/csv_table.h"

namespace sl::train {

struct RunCurve {
  // Every step with statistics or a validation loss, and the last training step; ascending.
  std::vector<int64_t> steps;
  // One value per step (NaN where not logged then) for tokens (seen after that step), then for
  // each summary cell of models::summary_cells(stats.eps), in its order.
  std::vector<std::string> names;
  std::vector<std::vector<double>> columns;
  std::vector<models::SummaryCell> cells;  // cells[i] is column i + 1
  std::string sink_source;                 // what sink@ and alpha1 read: "weights" or "proxy"
  // The column `name`; an error naming the valid ones if there is none.
  const std::vector<double>& operator[](const std::string& name) const;
  // The cell's value in a summary: the last logged value, or the largest (SummaryColumn::over).
  double summary(size_t cell) const;
};

// The curve of the run whose resolved config is `run` and whose log is `log_path`.
RunCurve read_run_curve(const Config& run, const std::string& log_path);

// The last step whose training loss the log holds, -1 if it has none (or cannot be read).
int64_t last_logged_step(const std::string& log_path);

// The curve as a table: step, tokens and the columns a summary shows at the last step (a largest
// value over steps is the same column).
CsvTable curve_table(const RunCurve& c);

// alpha_1 of uniform causal attention over T positions (A[i, 0] = 1 / (i + 1)):
// 1/T * sum_{i < T} 1/(i + 1) = H_T / T (0.0740 for T = 64).
double uniform_alpha1(int64_t T);

// The first step whose value reaches `threshold` (NaN values skipped), or -1 if none does.
int64_t first_reach(const std::vector<int64_t>& steps, const std::vector<double>& values, double threshold);

// The onset of the sink: the first step at which Sink_1^0.3 reaches 10 % and the first at which
// alpha_1 reaches twice its uniform value over the probe's positions; -1 where never (or, for
// the sink, where stats.eps has no 0.3).
struct Onset {
  int64_t sink_step = -1, alpha_step = -1;
};
constexpr double kOnsetEps = 0.3, kOnsetSinkPercent = 10, kOnsetAlphaFactor = 2;
Onset onset(const RunCurve& c, const Config& run);

// Tokens trained on per optimiser step (batch x context); 0 for a model without a token context.
int64_t tokens_per_step(const Config& run);

}  // namespace sl::train
