#include "train/lm_task.h"

#include <algorithm>
#include <cmath>

#include "models/statistics.h"
#include "train/model_builder.h"
#include "train/schema.h"
#include "train/stats_rows.h"

namespace sl::train {

LMTask::LMTask(const Config& cfg, ParamStore& ps) : T_(cfg.i("model.context")) {
  const int64_t micro = micro_batch(cfg);
  probe_B_ = cfg.i("stats.probe_batch");
  probe_T_ = std::min(cfg.i("stats.probe_len"), T_);
  data_ = open_lm_data(cfg, micro, T_, probe_B_, probe_T_);
  model_ = std::make_unique<models::Decoder>(decoder_config(cfg, data_.vocab_size), ps);
  if (cfg.s("train.loss") == "prefix_lm") loss_from_ = std::max<int64_t>(0, cfg.i("attention.prefix_len") - 1);
  z_loss_ = (float)cfg.f("train.z_loss");
  stats_opt_.first_k = cfg.i("stats.first_k");
  stats_opt_.eps = cfg.fl("stats.eps");
  stats_opt_.sink_tokens = cfg.b("attention.sink_token") ? 1 : 0;
  save_maps_ = cfg.b("stats.maps");
  map_layers_ = cfg.il("stats.map_layers");
}

models::ModelOutput LMTask::loss_on(const std::vector<int32_t>& windows, int64_t B,
                                    const std::optional<models::CaptureRequest>& capture) {
  const int64_t T = (int64_t)windows.size() / B - 1;
  std::vector<int32_t> inputs(B * T), targets(B * T);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t) {
      inputs[b * T + t] = windows[b * (T + 1) + t];
      targets[b * T + t] = t >= loss_from_ ? windows[b * (T + 1) + t + 1] : -1;
    }
  return model_->loss(inputs, B, T, targets, -1, z_loss_, capture);
}

TrainLoss LMTask::train_loss(int64_t batch, bool with_stats) {
  SL_CHECK(batch == data_.train->shape().batch, "LMTask: micro-batch " + std::to_string(batch) + " differs from the data's " +
                                                    std::to_string(data_.train->shape().batch));
  last_batch_ = data_.train->next_batch();
  // stats.source = train: this forward's first probe_B rows and probe_T positions are the probe.
  std::optional<models::CaptureRequest> capture;
  if (with_stats) {
    SL_CHECK(batch >= probe_B_, "stats.source = train: the micro-batch of " + std::to_string(batch) +
                                    " sequences is smaller than stats.probe_batch (" + std::to_string(probe_B_) + ")");
    capture = models::CaptureRequest{probe_B_, probe_T_};
  }
  models::ModelOutput out = loss_on(last_batch_, batch, capture);
  return {out.aux_loss.defined() ? add(out.loss, out.aux_loss) : out.loss,
          with_stats ? stats_rows(*out.capture) : std::vector<LogRow>{}};
}

std::string LMTask::diagnose_nonfinite() {
  const models::ModelOutput out = capture_forward(last_batch_, T_);
  const models::Capture& cap = *out.capture;
  for (size_t l = 0; l < cap.hidden.size(); ++l) {
    if (l < cap.attn.size() && cap.attn[l].probs.defined() && !all_finite(cap.attn[l].probs))
      return "block " + std::to_string(l) + " attention weights";
    if (!all_finite(cap.hidden[l])) return "block " + std::to_string(l) + " hidden state";
  }
  return all_finite(out.logits) ? "" : "the output logits";
}

std::vector<std::pair<std::string, double>> LMTask::evaluate(int64_t batches, int64_t batch) {
  NoGrad ng;
  double total = 0;
  auto val = data_.make_val();
  for (int64_t i = 0; i < batches; ++i) total += loss_on(val->next_batch(), batch).loss.item();
  return {{"val/loss", total / std::max<int64_t>(batches, 1)}};
}

models::ModelOutput LMTask::capture_forward(const std::vector<int32_t>& windows, int64_t T) {
  NoGrad ng;
  const int64_t B = (int64_t)windows.size() / (T + 1);
  std::vector<int32_t> inputs(B * T);
  for (int64_t b = 0; b < B; ++b) std::copy_n(windows.begin() + b * (T + 1), T, inputs.begin() + b * T);
  return model_->forward(inputs, B, T, models::CaptureRequest{});
}

models::Capture LMTask::probe_forward() { return *capture_forward(data_.probe, probe_T_).capture; }

std::vector<LogRow> LMTask::probe_stats() { return stats_rows(probe_forward()); }

std::vector<LogRow> LMTask::stats_rows(const models::Capture& cap) const {
  std::vector<LogRow> rows = statistics_rows(models::StatsInput(cap.attn, cap.hidden, cap.moe, stats_opt_));
  // Full maps (stats.maps), for the layers asked for, every head.
  for (int64_t l = 0; save_maps_ && l < (int64_t)cap.attn.size(); ++l) {
    if (!map_layers_.empty() && std::find(map_layers_.begin(), map_layers_.end(), l) == map_layers_.end()) continue;
    for (int64_t h = 0; h < cap.attn[l].probs.size(1); ++h) rows.push_back(attention_map_row(cap.attn, l, h));
  }
  return rows;
}

LogRow LMTask::attention_map(int64_t layer, int64_t head) { return attention_map_row(probe_forward().attn, layer, head); }

LogRow attention_map_row(const std::vector<models::AttentionCapture>& attn, int64_t layer, int64_t head) {
  SL_CHECK(layer >= 0 && layer < (int64_t)attn.size(), "no layer " + std::to_string(layer));
  Tensor A = attn[layer].probs.contiguous();
  const int64_t B = A.size(0), H = A.size(1), T = A.size(2), S = A.size(3);
  SL_CHECK(head >= 0 && head < H, "no head " + std::to_string(head));
  LogRow row{models::attention_map_name(layer, head), {B, T, S}, {}};
  for (int64_t b = 0; b < B; ++b)
    row.values.insert(row.values.end(), A.data() + (b * H + head) * T * S, A.data() + (b * H + head + 1) * T * S);
  return row;
}

// Decoding goes through a KV cache that holds the model's positions; beyond them it keeps the first
// few tokens and the most recent (StreamingLLM). A model whose queries see later keys (a prefix
// mask) runs a full forward of the last context tokens at every step instead.
static constexpr int64_t kSampleSinks = 4;

std::string LMTask::sample(const std::string& prompt, int64_t tokens, float temperature, uint64_t seed) {
  NoGrad ng;
  Rng rng(seed);
  std::vector<int32_t> ids{data_.bos};
  for (int32_t t : data_.encode(prompt)) ids.push_back(t);
  const size_t prompt_len = ids.size();
  std::optional<models::KVCache> cache;
  const int64_t places = model_->positions();
  if (model_->can_decode()) cache.emplace(model_->make_cache({places, std::min(kSampleSinks, places - 1)}));
  // The logits after ids: the cache is fed what it has not seen, at first up to a context at once.
  size_t fed = 0;
  auto next_logits = [&]() {
    if (!cache) {
      std::vector<int32_t> ctx(ids.end() - std::min<int64_t>((int64_t)ids.size(), T_), ids.end());
      return model_->forward(ctx, 1, (int64_t)ctx.size()).logits;
    }
    Tensor logits;
    while (fed < ids.size()) {
      const size_t n = fed == 0 ? std::min<size_t>(ids.size(), T_) : 1;
      logits = model_->decode(std::vector<int32_t>(ids.begin() + fed, ids.begin() + fed + n), 1, n, *cache).logits;
      fed += n;
    }
    return logits;
  };
  for (int64_t n = 0; n < tokens; ++n) {
    Tensor logits = next_logits();
    const int64_t V = logits.size(1);
    const float* last = logits.data() + (logits.size(0) - 1) * V;
    // Sample from softmax(logits / temperature); temperature 0 is greedy.
    int32_t next = (int32_t)(std::max_element(last, last + V) - last);
    if (temperature > 0) {
      std::vector<double> p(V);
      double z = 0;
      for (int64_t v = 0; v < V; ++v) z += p[v] = std::exp((last[v] - last[next]) / temperature);
      double r = rng.uniform() * z;
      for (int64_t v = 0; v < V; ++v)
        if ((r -= p[v]) <= 0) {
          next = (int32_t)v;
          break;
        }
    }
    if (next == data_.bos) break;  // a document ended
    ids.push_back(next);
  }
  return prompt + data_.decode(std::vector<int32_t>(ids.begin() + prompt_len, ids.end()));
}

void LMTask::set_probe_text(const std::string& text) {
  // Consecutive windows of probe_T + 1 tokens, each starting with BOS as a document would.
  std::vector<int32_t> ids = data_.encode(text);
  const int64_t per = probe_T_;  // BOS + probe_T tokens = probe_T + 1 per window
  const int64_t n = std::min<int64_t>(probe_B_, (int64_t)ids.size() / per);
  SL_CHECK(n > 0, "replay --data: the text has " + std::to_string(ids.size()) + " tokens, fewer than one probe window of " +
                      std::to_string(per));
  data_.probe.clear();
  for (int64_t b = 0; b < n; ++b) {
    data_.probe.push_back(data_.bos);
    data_.probe.insert(data_.probe.end(), ids.begin() + b * per, ids.begin() + (b + 1) * per);
  }
  probe_B_ = n;
}

}  // namespace sl::train
