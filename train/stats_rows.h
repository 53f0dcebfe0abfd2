// SinkStats -> the rows of log.h5 (and replay.h5): one dataset per statistic, step first.
#pragma once
#include <vector>

#include "models/sink_stats.h"
#include "train/task.h"

namespace sl::train {

std::vector<LogRow> sink_stats_rows(const models::SinkStats& s);

}  // namespace sl::train
