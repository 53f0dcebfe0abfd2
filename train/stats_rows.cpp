#include "train/stats_rows.h"

namespace sl::train {

std::vector<LogRow> statistics_rows(const models::StatsInput& in) {
  std::vector<LogRow> rows;
  for (const models::Statistic& s : models::statistics())
    if (s.compute && (!s.logged || s.logged(in)))
      rows.push_back({s.name, models::row_shape(s, in), models::compute(s, in)});
  return rows;
}

}  // namespace sl::train
