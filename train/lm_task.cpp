#include "train/lm_task.h"

#include <algorithm>
#include <cmath>

#include "models/moe_stats.h"
#include "models/sink_stats.h"
#include "train/model_builder.h"
#include "train/stats_rows.h"

namespace sl::train {

LMTask::LMTask(const Config& cfg, ParamStore& ps) : T_(cfg.i("model.context")) {
  const int64_t micro = cfg.i("train.micro_batch") > 0 ? cfg.i("train.micro_batch") : cfg.i("train.batch_size");
  probe_B_ = cfg.i("stats.probe_batch");
  probe_T_ = std::min(cfg.i("stats.probe_len"), T_);
  data_ = open_lm_data(cfg, micro, T_, probe_B_, probe_T_);
  model_ = std::make_unique<models::Decoder>(decoder_config(cfg, data_.vocab_size), ps);
  if (cfg.s("train.loss") == "prefix_lm") loss_from_ = std::max<int64_t>(0, cfg.i("attention.prefix_len") - 1);
  z_loss_ = (float)cfg.f("train.z_loss");
  stats_opt_.first_k = cfg.i("stats.first_k");
  stats_opt_.eps = cfg.fl("stats.eps");
  save_maps_ = cfg.b("stats.maps");
  map_layers_ = cfg.il("stats.map_layers");
}

// windows: B rows of T+1 tokens; inputs are the first T, targets the last T.
Tensor LMTask::loss_on(const std::vector<int32_t>& windows, int64_t B, models::DecoderCapture* capture) {
  const int64_t T = (int64_t)windows.size() / B - 1;
  std::vector<int32_t> inputs(B * T), targets(B * T);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t) {
      inputs[b * T + t] = windows[b * (T + 1) + t];
      targets[b * T + t] = t >= loss_from_ ? windows[b * (T + 1) + t + 1] : -1;
    }
  return model_->loss(inputs, B, T, targets, -1, z_loss_, capture);
}

Tensor LMTask::train_loss(int64_t batch) {
  SL_CHECK(batch == data_.train->shape().batch, "LMTask: micro-batch " + std::to_string(batch) + " differs from the data's " +
                                                    std::to_string(data_.train->shape().batch));
  last_batch_ = data_.train->next_batch();
  // stats.source = train: this forward's first probe_B rows and probe_T positions are the probe.
  const bool capture = capture_next_;
  capture_next_ = false;
  models::DecoderCapture cap;
  if (capture) {
    SL_CHECK(batch >= probe_B_, "stats.source = train: the micro-batch of " + std::to_string(batch) +
                                    " sequences is smaller than stats.probe_batch (" + std::to_string(probe_B_) + ")");
    cap.rows = probe_B_;
    cap.positions = probe_T_;
  }
  Tensor loss = loss_on(last_batch_, batch, capture ? &cap : nullptr);
  if (capture) train_rows_ = stats_rows(cap);
  return model_->router_loss().defined() ? add(loss, model_->router_loss()) : loss;
}

static bool all_finite(const Tensor& t) {
  Tensor c = t.contiguous();
  return std::all_of(c.data(), c.data() + c.numel(), [](float v) { return std::isfinite(v); });
}

std::string LMTask::diagnose_nonfinite() {
  Tensor logits;
  models::DecoderCapture cap = capture_forward(last_batch_, T_, &logits);
  for (size_t l = 0; l < cap.hidden.size(); ++l) {
    if (l < cap.attn.size() && cap.attn[l].probs.defined() && !all_finite(cap.attn[l].probs))
      return "block " + std::to_string(l) + " attention weights";
    if (!all_finite(cap.hidden[l])) return "block " + std::to_string(l) + " hidden state";
  }
  return all_finite(logits) ? "" : "the output logits";
}

std::vector<std::pair<std::string, double>> LMTask::evaluate(int64_t batches, int64_t batch) {
  NoGrad ng;
  double total = 0;
  auto val = data_.make_val();
  for (int64_t i = 0; i < batches; ++i) total += loss_on(val->next_batch(), batch).item();
  return {{"val/loss", total / std::max<int64_t>(batches, 1)}};
}

models::DecoderCapture LMTask::capture_forward(const std::vector<int32_t>& windows, int64_t T, Tensor* logits) {
  NoGrad ng;
  const int64_t B = (int64_t)windows.size() / (T + 1);
  std::vector<int32_t> inputs(B * T);
  for (int64_t b = 0; b < B; ++b) std::copy_n(windows.begin() + b * (T + 1), T, inputs.begin() + b * T);
  models::DecoderCapture cap;
  Tensor out = model_->forward(inputs, B, T, &cap);
  if (logits) *logits = out;
  return cap;
}

models::DecoderCapture LMTask::probe_forward() { return capture_forward(data_.probe, probe_T_); }

std::vector<LogRow> LMTask::probe_stats() { return stats_rows(probe_forward()); }

void LMTask::capture_train_stats() {
  capture_next_ = true;
  train_rows_.clear();
}

std::vector<LogRow> LMTask::train_stats() { return std::move(train_rows_); }

std::vector<LogRow> LMTask::stats_rows(const models::DecoderCapture& cap) const {
  std::vector<LogRow> rows = sink_stats_rows(models::compute_sink_stats(cap.attn, cap.hidden, stats_opt_));
  // Full maps (stats.maps), for the layers asked for, every head.
  for (int64_t l = 0; save_maps_ && l < (int64_t)cap.attn.size(); ++l) {
    if (!map_layers_.empty() && std::find(map_layers_.begin(), map_layers_.end(), l) == map_layers_.end()) continue;
    for (int64_t h = 0; h < cap.attn[l].probs.size(1); ++h) rows.push_back(attention_map_row(cap.attn, l, h));
  }
  const models::MoEStats m = models::compute_moe_stats(cap.moe, cap.attn, (float)stats_opt_.eps.at(0));
  if (m.layers == 0) return rows;
  const int64_t M = m.layers, E = m.experts;
  std::vector<LogRow> moe = {
      {"moe/block", {M}, m.block},
      {"moe/tokens_per_expert", {M, E}, m.tokens_per_expert},
      {"moe/dropped", {M}, m.dropped},
      {"moe/router_entropy", {M}, m.router_entropy},
      {"moe/first_token_experts", {M, E}, m.first_token_experts},
      {"moe/sink_token_experts", {M, E}, m.sink_token_experts},
      {"moe/sink_tokens", {M}, m.sink_tokens},
      {"moe/expert_norm_max", {M, E}, m.expert_norm_max},
      {"moe/aux_loss", {M}, m.aux_loss},
      {"moe/z_loss", {M}, m.z_loss},
  };
  rows.insert(rows.end(), moe.begin(), moe.end());
  return rows;
}

LogRow LMTask::attention_map(int64_t layer, int64_t head) { return attention_map_row(probe_forward().attn, layer, head); }

LogRow attention_map_row(const std::vector<models::AttentionCapture>& attn, int64_t layer, int64_t head) {
  SL_CHECK(layer >= 0 && layer < (int64_t)attn.size(), "no layer " + std::to_string(layer));
  Tensor A = attn[layer].probs.contiguous();
  const int64_t B = A.size(0), H = A.size(1), T = A.size(2), S = A.size(3);
  SL_CHECK(head >= 0 && head < H, "no head " + std::to_string(head));
  LogRow row{"maps/layer" + std::to_string(layer) + "_head" + std::to_string(head), {B, T, S}, {}};
  for (int64_t b = 0; b < B; ++b)
    row.values.insert(row.values.end(), A.data() + (b * H + head) * T * S, A.data() + (b * H + head + 1) * T * S);
  return row;
}

std::string LMTask::sample(const std::string& prompt, int64_t tokens, float temperature, uint64_t seed) {
  NoGrad ng;
  Rng rng(seed);
  std::vector<int32_t> ids{data_.bos};
  for (int32_t t : data_.encode(prompt)) ids.push_back(t);
  const size_t prompt_len = ids.size();
  for (int64_t n = 0; n < tokens; ++n) {
    std::vector<int32_t> ctx(ids.end() - std::min<int64_t>((int64_t)ids.size(), T_), ids.end());
    const int64_t T = (int64_t)ctx.size();
    Tensor logits = model_->forward(ctx, 1, T);
    const int64_t V = logits.size(1);
    const float* last = logits.data() + (T - 1) * V;
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
