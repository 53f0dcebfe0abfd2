// Next-token prediction with the decoder on a token source (corpus shards or a synthetic
// generator). Loss: cross-entropy on every position, or only after the prefix (prefix-LM);
// training adds the MoE router losses (val/loss is the cross-entropy alone).
#pragma once
#include <memory>

#include "models/decoder.h"
#include "models/stats_input.h"
#include "train/lm_data.h"
#include "train/task.h"

namespace sl::train {

class LMTask : public Task {
 public:
  LMTask(const Config& cfg, ParamStore& ps);
  TrainLoss train_loss(int64_t batch, bool with_stats) override;
  void skip_train_batch(int64_t) override { data_.train->next_batch(); }
  std::vector<std::pair<std::string, double>> evaluate(int64_t batches, int64_t batch) override;
  std::vector<LogRow> probe_stats() override;
  LogRow attention_map(int64_t layer, int64_t head) override;
  std::string sample(const std::string& prompt, int64_t tokens, float temperature, uint64_t seed) override;
  void set_probe_text(const std::string& text) override;
  std::string diagnose_nonfinite() override;
  int64_t tokens_per_sequence() const override { return T_; }
  std::vector<int64_t> data_state() const override { return data_.train->state(); }
  void set_data_state(const std::vector<int64_t>& s) override { data_.train->set_state(s); }
  // The model and its data, for the analyses on replay (train/interventions.h, streaming_eval.h).
  const models::Decoder& model() const { return *model_; }
  const LMData& data() const { return data_; }

 private:
  // windows: B rows of T+1 tokens -> the model's output, whose .loss is the cross-entropy of
  // predicting each row's last T tokens from its first T.
  models::ModelOutput loss_on(const std::vector<int32_t>& windows, int64_t B,
                              const std::optional<models::CaptureRequest>& capture = std::nullopt);
  // The logged rows of a capture: the declared statistics, and maps (stats.maps).
  std::vector<LogRow> stats_rows(const models::Capture& cap) const;
  // A forward without gradients of windows of T + 1 tokens (inputs: each window's first T),
  // capturing everything.
  models::ModelOutput capture_forward(const std::vector<int32_t>& windows, int64_t T);
  models::Capture probe_forward();

  LMData data_;
  std::vector<int32_t> last_batch_;  // windows of the last train_loss(), for diagnose_nonfinite
  std::unique_ptr<models::Decoder> model_;
  int64_t T_;
  int64_t loss_from_ = 0;  // first position whose prediction counts (prefix-LM: prefix_len - 1)
  float z_loss_;
  int64_t probe_B_, probe_T_;
  models::StatsOptions stats_opt_;
  bool save_maps_ = false;
  std::vector<int64_t> map_layers_;
};

// The weights [B, T, S] of one layer and head of a probe pass, as the replay's maps/ row.
LogRow attention_map_row(const std::vector<models::AttentionCapture>& attn, int64_t layer, int64_t head);

}  // namespace sl::train
