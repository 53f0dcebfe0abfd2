// The measures of attention sinks (Gu et al., 2025) on one layer's attention map A [B, H, T, S],
// whose first `slots` columns are bias slots (a kv-bias key) before the T real keys. For a key at
// (0-based) position p:
//   alpha_p = 1/(T - p) * sum_{i >= p} A[i, p]          (importance: mean attention it receives)
//   Sink_p^eps = mean over layers, heads, sequences of 1[alpha_p > eps]   (in percent)
// Under a bidirectional mask (the ViT) every query sees every key: alpha_p = 1/T sum_i A[i, p].
// These are the shared pieces; statistics.cpp declares what is logged from them.
#pragma once
#include <vector>

#include "engine/tensor.h"

namespace sl::models {

// alpha[b, h, p] for p < k under a causal mask: the mean over the queries that see key p.
std::vector<float> importance(const Tensor& probs, int64_t slots, int64_t k);

// alpha[b, h, j] over all T queries, for every real key j (after `slots` bias slots).
std::vector<float> importance_all_queries(const Tensor& probs, int64_t slots);

// The paper's proxy weights for kernels whose rows are not distributions:
//   A~_ij = |w_ij| / sum_j |w_ij|   per row (a row of zeros stays zero).
Tensor proxy_weights(const Tensor& probs);

// Per (sequence, head) [B * H]: the mean over the T queries of the weight on the first n columns
// (the bias slots and a sink token): the slot's importance, whose share above eps is Sink_*.
std::vector<double> slot_importance(const Tensor& probs, int64_t n);

// Per (sequence, head) [B * H], over the T rows: the sums of each row's entropy (in nats, of the
// row divided by its sum), of its sum and of its weight on the bias slots; the largest weight.
struct RowSums {
  std::vector<double> entropy, row_sum, slot, max;
};
RowSums row_sums(const Tensor& probs, int64_t slots);

// ||x_r|| of every row r of x [..., D], flattened.
std::vector<float> row_norms(const Tensor& x);

}  // namespace sl::models
