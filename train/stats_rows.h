// The declared statistics (models/statistics.h) of a capture as rows of log.h5 (and replay.h5):
// one dataset per statistic that applies to it, step first.
#pragma once
#include <vector>

#include "models/statistics.h"
#include "train/task.h"

namespace sl::train {

std::vector<LogRow> statistics_rows(const models::StatsInput& in);

}  // namespace sl::train
