#include "models/stats_input.h"

#include <algorithm>

namespace sl::models {

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
    Layer& L = layer_[l];
    const int64_t slots = attn[l].slot_offset;
    auto alpha_of = [&](const Tensor& w) {
      return opt.vit ? importance_all_queries(w, slots) : models::importance(w, slots, queries_);
    };
    L.probs = attn[l].probs.contiguous();
    L.alpha = alpha_of(L.probs);
    L.rows = models::row_sums(L.probs, slots);
    if (!normalized_) {
      L.proxy = proxy_weights(L.probs);
      L.proxy_alpha = alpha_of(L.proxy);
    }
    if (l < hidden.size()) L.token_norms = row_norms(hidden[l]), L.magnitudes = models::magnitudes(hidden[l]);
    if (attn[l].values.defined() && attn[l].out_proj.defined())
      L.value_output_norms = models::value_output_norms(attn[l].values, attn[l].out_proj);
  }
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
