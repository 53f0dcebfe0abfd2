#include "models/stats_input.h"

#include <algorithm>

#include "engine/threads.h"

namespace sl::models {

namespace {

// [B, T] of norms [B, T]: 1 where a token's norm exceeds kHighNorm times its image's median patch norm.
std::vector<uint8_t> high_norm_mask(const std::vector<float>& norms, int64_t B, int64_t first_patch) {
  const int64_t T = (int64_t)norms.size() / B;
  std::vector<uint8_t> out(norms.size(), 0);
  for (int64_t b = 0; b < B; ++b) {
    std::vector<float> patch(norms.begin() + b * T + first_patch, norms.begin() + (b + 1) * T);
    std::nth_element(patch.begin(), patch.begin() + patch.size() / 2, patch.end());
    const float median = patch[patch.size() / 2];
    for (int64_t j = 0; j < T; ++j) out[b * T + j] = norms[b * T + j] > kHighNorm * median;
  }
  return out;
}

}  // namespace

StatsInput::StatsInput(const std::vector<AttentionCapture>& attn, const std::vector<Tensor>& hidden,
                       const std::vector<MoECapture>& moe, const StatsOptions& opt)
    : attn_(attn), hidden_(hidden), opt_(opt) {
  if (attn.empty()) return;
  const Tensor& p0 = attn[0].probs;
  sequences_ = p0.size(0), heads_ = p0.size(1), queries_ = p0.size(2);
  k_ = std::min(opt.first_k, queries_);
  slots_ = attn[0].slot_offset;
  for (const AttentionCapture& a : attn) normalized_ = normalized_ && a.normalized;
  layer_.resize(attn.size());
  for (size_t l = 0; l < attn.size(); ++l) {
    layer_[l].probs = attn[l].probs.contiguous();
    // matrix products, on oneDNN's one stream, which takes one thread at a time: before the tasks
    if (attn[l].values.defined() && attn[l].out_proj.defined())
      layer_[l].value_output_norms = models::value_output_norms(attn[l].values, attn[l].out_proj);
  }
  // The rest of each layer's reductions: a task a layer.
  parallel_tasks((int64_t)attn.size(), [&](int64_t l) {
    Layer& L = layer_[l];
    const int64_t slots = attn[l].slot_offset;
    auto alpha_of = [&](const Tensor& w) {
      return opt.vit ? importance_all_queries(w, slots) : models::importance(w, slots, queries_);
    };
    L.alpha = alpha_of(L.probs);
    L.rows = models::row_sums(L.probs, slots, attn[l].mask);
    if (!normalized_) {
      L.proxy = proxy_weights(L.probs);
      L.proxy_alpha = alpha_of(L.proxy);
      L.proxy_rows = models::row_sums(L.proxy, slots, attn[l].mask);
    }
    if (l < (int64_t)hidden.size()) L.token_norms = row_norms(hidden[l]), L.magnitudes = models::magnitudes(hidden[l]);
    if (opt.vit && !L.token_norms.empty()) {
      SL_CHECK((int64_t)L.token_norms.size() == sequences_ * queries_,
               "vit statistics: the residual stream has " + std::to_string(L.token_norms.size() / sequences_) +
                   " tokens but the attention " + std::to_string(queries_));
      L.high_norm = high_norm_mask(L.token_norms, sequences_, opt.first_patch);
    }
    if (!L.value_output_norms.empty()) L.contributions = output_contributions(L.probs, L.value_output_norms, slots);
  });
  if (std::any_of(moe.begin(), moe.end(), [](const MoECapture& m) { return m.tokens > 0; })) {
    SL_CHECK(!opt.eps.empty(), "the MoE statistics need a threshold in stats.eps");
    moe_stats_ = compute_moe_stats(moe, attn, (float)opt.eps[0]);
  }
}

const Tensor& StatsInput::weights(int64_t layer, Weights w) const {
  SL_CHECK(w == Weights::Raw || !normalized_, "proxy weights exist only for kernels whose weights are not normalised");
  return w == Weights::Raw ? layer_.at(layer).probs : layer_.at(layer).proxy;
}

const std::vector<float>& StatsInput::importance(int64_t layer, Weights w) const {
  SL_CHECK(w == Weights::Raw || !normalized_, "proxy weights exist only for kernels whose weights are not normalised");
  return w == Weights::Raw ? layer_.at(layer).alpha : layer_.at(layer).proxy_alpha;
}

}  // namespace sl::models
