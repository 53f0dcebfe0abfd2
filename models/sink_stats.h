// Attention-sink statistics of Gu et al. (2025), computed from the attention weights a
// forward pass already produced. For a key at (0-based) position p of T:
//   alpha_p = 1/(T - p) * sum_{i >= p} A[i, p]          (importance: mean attention it receives)
//   Sink_p^eps = mean over layers, heads, sequences of 1[alpha_p > eps]   (in percent)
// Bias slots (a kv-bias key) have alpha = mean over all queries.
#pragma once
#include <vector>

#include "models/attention.h"

namespace sl::models {

struct SinkStatsOptions {
  int64_t first_k = 8;
  std::vector<double> eps{0.3};
};

struct SinkStats {
  int64_t layers = 0, heads = 0, k = 0, slots = 0;
  std::vector<float> alpha;            // [L, H, K]   averaged over sequences
  std::vector<float> slot_alpha;       // [L, H]      when there is a bias slot
  std::vector<float> sink_rate;        // [eps]       Sink_1^eps in percent
  std::vector<float> sink_rate_k;      // [eps, K]    Sink_p^eps in percent for each of the first K
  std::vector<float> entropy;          // [L, H]      of the row-normalised weights, in nats
  std::vector<float> attn_max, attn_mean;  // [L]
  std::vector<float> row_sum;          // [L, H]      mean row sum (1 for normalised kernels)
  std::vector<float> key_norm, value_norm;  // [L, K] mean over sequences and heads
  std::vector<float> hidden_norm;      // [L, K]      ||h_t|| after each block, first K positions
  std::vector<float> massive_ratio;    // [L]         ||h_0|| / median_t ||h_t||
};

// probs of every layer [B, H, T, S]; hidden [B, T, D] per layer (may be empty).
SinkStats compute_sink_stats(const std::vector<AttentionCapture>& attn, const std::vector<Tensor>& hidden,
                             const SinkStatsOptions& opt);

// The per-sequence importance alpha[b, h, p] of one layer's weights, for p < k (exposed for tests).
std::vector<float> importance(const Tensor& probs, int64_t slot_offset, int64_t k);

}  // namespace sl::models
