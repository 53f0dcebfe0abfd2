#include "train/stats_rows.h"

#include "engine/threads.h"

namespace sl::train {

std::vector<LogRow> statistics_rows(const models::StatsInput& in) {
  std::vector<const models::Statistic*> logged;
  for (const models::Statistic& s : models::statistics())
    if (s.compute && (!s.logged || s.logged(in))) logged.push_back(&s);
  std::vector<LogRow> rows(logged.size());
  parallel_tasks((int64_t)logged.size(), [&](int64_t i) {  // each reads `in` only
    rows[i] = {logged[i]->name, models::row_shape(*logged[i], in), models::compute(*logged[i], in)};
  });
  return rows;
}

}  // namespace sl::train
