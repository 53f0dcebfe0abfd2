#include "models/moe_stats.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "models/sink_stats.h"

namespace sl::models {

MoEStats compute_moe_stats(const std::vector<MoECapture>& moe, const std::vector<AttentionCapture>& attn, float eps) {
  MoEStats st;
  for (size_t l = 0; l < moe.size(); ++l) {
    const MoECapture& m = moe[l];
    if (m.tokens == 0) continue;
    const int64_t N = m.tokens, E = m.experts, k = m.top_k;
    const Tensor& A = attn[l].probs;
    const int64_t B = A.size(0), H = A.size(1), T = A.size(2);
    SL_CHECK(B * T == N, "moe stats: block " + std::to_string(l) + " routed " + std::to_string(N) +
                             " tokens but its attention saw " + std::to_string(B) + " x " + std::to_string(T));
    st.layers++;
    st.experts = E;
    st.block.push_back((float)l);
    std::vector<float> alpha = importance(A, attn[l].slot_offset, T);  // [B, H, T]
    std::vector<float> load(E, 0.f), first(E, 0.f), rest(E, 0.f), sink(E, 0.f), norm_max(E, 0.f);
    double entropy = 0, entropy_first = 0, dropped = 0, sink_count = 0;
    for (int64_t n = 0; n < N; ++n) {
      const int64_t b = n / T, t = n % T;
      bool is_sink = false;
      for (int64_t h = 0; h < H; ++h) is_sink |= alpha[(b * H + h) * T + t] > eps;
      sink_count += is_sink;
      for (int64_t j = 0; j < k; ++j) {
        const int32_t e = m.choice[n * k + j];
        norm_max[e] = std::max(norm_max[e], m.output_norm[n * k + j]);
        if (m.kept[n * k + j]) load[e] += 1;
        else dropped += 1;
        if (t == 0) first[e] += 1.f / (B * k);
        else rest[e] += 1;
        if (is_sink) sink[e] += 1;
      }
      double h = 0;
      for (int64_t e = 0; e < E; ++e) {
        const float q = m.scores[n * E + e];
        if (q > 0) h -= q * std::log(q);
      }
      entropy += h;
      if (t == 0) entropy_first += h;
    }
    const int64_t first_expert = std::max_element(first.begin(), first.end()) - first.begin();
    const double rest_total = std::accumulate(rest.begin(), rest.end(), 0.0);
    for (auto& s : sink) s = sink_count > 0 ? (float)(s / (sink_count * k)) : 0.f;
    st.tokens_per_expert.insert(st.tokens_per_expert.end(), load.begin(), load.end());
    st.first_token_experts.insert(st.first_token_experts.end(), first.begin(), first.end());
    st.sink_token_experts.insert(st.sink_token_experts.end(), sink.begin(), sink.end());
    st.expert_norm_max.insert(st.expert_norm_max.end(), norm_max.begin(), norm_max.end());
    st.dropped.push_back((float)(100.0 * dropped / (N * k)));
    st.router_entropy.push_back((float)(entropy / N));
    st.router_entropy_first.push_back((float)(entropy_first / B));
    st.first_expert_rest_share.push_back(rest_total > 0 ? (float)(rest[first_expert] / rest_total) : 0.f);
    st.sink_tokens.push_back((float)(100.0 * sink_count / N));
    st.aux_loss.push_back(m.aux_loss);
    st.z_loss.push_back(m.z_loss);
  }
  return st;
}

}  // namespace sl::models
