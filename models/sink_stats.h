// The measures of attention sinks (Gu et al., 2025) on one layer's attention map A [B, H, T, S],
// whose first `slots` columns are bias slots (a kv-bias key) before the T real keys. For a key at
// (0-based) position p:
//   alpha_p = 1/(T - p) * sum_{i >= p} A[i, p]          (importance: mean attention it receives)
//   Sink_p^eps = mean over layers, heads, sequences of 1[alpha_p > eps]   (in percent)
// Under a bidirectional mask (the ViT) every query sees every key: alpha_p = 1/T sum_i A[i, p].
// These are the shared pieces; statistics.cpp declares what is logged from them.
#pragma once
#include <cstdint>
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
// Per row [B * H * T]: its entropy and its sum. Under mask [T, S] (1 = hidden; empty: none) a
// row's keys after its last visible one are skipped: every kernel's weight there is zero, and a
// causal row is half of them.
struct RowSums {
  std::vector<double> entropy, row_sum, slot, max;
  std::vector<double> row_entropy, row_total;
};
RowSums row_sums(const Tensor& probs, int64_t slots, const std::vector<uint8_t>& mask = {});

// Per (sequence, head) [B * H]: the mean over the T query rows of H_t / log n_t, the row's entropy
// (RowSums::row_entropy) over the log of its n_t visible keys (mask [T, S], 1 = hidden), skipping
// rows with n_t < 2 and rows of no weight (NaN if none is left): 0 when a query attends to one key,
// 1 when uniform.
std::vector<double> normalized_entropy(const RowSums& rows, const std::vector<uint8_t>& mask, int64_t T);

// Per (sequence, head) [B * H]: (1/T) sum_t A[t, slots + t], the weight of each query on itself.
std::vector<double> diagonal_mass(const Tensor& probs, int64_t slots);

// ||v_j W_O^h|| [B, H, S] of values [B, H, S, d_h] through the heads' slices W_O^h [H, d_h, D] of
// the output projection: the size of what key j writes into the residual stream per unit weight.
std::vector<float> value_output_norms(const Tensor& values, const Tensor& out_proj);

// Norm-based attention (Kobayashi et al. 2020): key j adds A_tj v_j W_O^h to query t's output,
// of norm |A_tj| n_j with n_j = ||v_j W_O^h|| (value_output_norms). Per (sequence, head)
// [B * H], the mean over the T queries of the norm of `column`'s term, of the sum of every
// column's norms, and of the ratio of the two (0 for a row that writes nothing).
struct Contributions {
  std::vector<double> sink, total, share;
};
Contributions output_contributions(const Tensor& probs, const std::vector<float>& value_norms, int64_t column);

// Per (sequence, head) [B * H]: the mean over queries t >= 1 that see key `column` of
//   s_t,column - mean over the keys j visible to t of s_tj,   s_tj = q_t . k_j / sqrt(d_h)
// for queries [B, H, T, d_h], keys [B, H, S, d_h] and mask [T, S] (NaN if no query sees the column).
std::vector<double> centred_logit(const Tensor& queries, const Tensor& keys, const std::vector<uint8_t>& mask,
                                  int64_t column);

// ||x_r|| of every row r of x [..., D], flattened.
std::vector<float> row_norms(const Tensor& x);

}  // namespace sl::models
