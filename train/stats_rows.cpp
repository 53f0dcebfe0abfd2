#include "train/stats_rows.h"

namespace sl::train {

std::vector<LogRow> sink_stats_rows(const models::SinkStats& s) {
  const int64_t L = s.layers, H = s.heads, K = s.k, E = (int64_t)s.sink_rate.size();
  std::vector<LogRow> rows = {
      {"attn/alpha", {L, H, K}, s.alpha},
      {"attn/sink_rate", {E}, s.sink_rate},
      {"attn/sink_rate_k", {E, K}, s.sink_rate_k},
      {"attn/entropy", {L, H}, s.entropy},
      {"attn/max", {L}, s.attn_max},
      {"attn/mean", {L}, s.attn_mean},
      {"attn/row_sum", {L, H}, s.row_sum},
      {"attn/key_norm", {L, K}, s.key_norm},
      {"attn/value_norm", {L, K}, s.value_norm},
  };
  if (s.slots) rows.push_back({"attn/slot_alpha", {L, H}, s.slot_alpha});
  if (!s.hidden_norm.empty()) {
    rows.push_back({"hidden/norm", {L, K}, s.hidden_norm});
    rows.push_back({"hidden/massive_ratio", {L}, s.massive_ratio});
  }
  return rows;
}

}  // namespace sl::train
