// One multi-head attention module for every ablation of the sink studies. Scores
//   s_ij = q_i . k_j / sqrt(d_h)  (+ a positional bias b_ij for alibi / relative encodings)
// are turned into weights A_ij by the configured kernel (softmax, sigmoid, elu+1, linear,
// mlp, relu), optionally normalised per row, and the output is o_i = sum_j A_ij v_j.
// Additions: a learnable key/value bias slot, off-by-one and sink-logit denominators, an
// output gate, QK-norm, and causal / prefix / sliding / bidirectional masks.
#pragma once
#include <string>
#include <vector>

#include "engine/ops.h"
#include "engine/params.h"

namespace sl::models {

struct AttentionConfig {
  int64_t d_model = 256, n_heads = 4;
  std::string kernel = "softmax";  // softmax | sigmoid | elu_plus_one | linear | mlp | relu
  bool normalize = false;          // divide non-softmax weights by their row sum
  float sigmoid_bias = 0.f;        // b in sigma(s + b); NaN means -log T
  bool off_by_one = false;         // softmax with 1 added to the denominator
  bool sink_logit = false;         // learnable per-head logit in the denominator, no value
  bool kv_bias = false;            // an extra key/value slot at position -1
  bool kv_bias_key_learnable = true, kv_bias_value_learnable = true, kv_bias_per_head = false;
  std::string gate = "none";  // none | elementwise | headwise
  bool qk_norm = false;
  std::string mask = "causal";  // causal | prefix | sliding | bidirectional
  int64_t prefix_len = 0, window = 0;
  int64_t mlp_hidden = 16;
  bool bias = false;             // biases in the q/k/v/o projections
  std::string pos = "rope";      // rope | alibi | relative apply here; the rest act on embeddings
  float rope_theta = 10000.f;
  int64_t relative_buckets = 32, relative_max_distance = 128;
  float init_std = 0.02f, out_init_std = 0.02f;
  float norm_eps = 1e-5f;
  bool fused_core = true;  // use the engine's fused attention op where the variant allows
};

// What the statistics need from one forward pass, kept only when asked for.
// rows / positions (set by the caller, -1 = all) keep only the first `rows` sequences and the
// first `positions` queries with their keys (and the bias slots): under a causal mask that block
// is exactly what a forward of those rows' first `positions` tokens computes. It is copied, so a
// training forward does not keep its whole T x T weights alive for the statistics.
struct AttentionCapture {
  int64_t rows = -1, positions = -1;
  Tensor probs;           // [B, H, T, S] attention weights, detached
  Tensor keys, values;    // [B, H, S, d_h], detached
  int64_t slot_offset = 0;  // columns before the first real key (the kv-bias slot)
  // Each row of probs is a distribution over the keys: softmax (off-by-one and the sink logit
  // leave their missing mass to an implicit key), or a nonnegative kernel with normalize. Else
  // the statistics also score the paper's proxy weights |w| / sum |w|.
  bool normalized = true;
};

// x cut to its first extents[d] entries along each dimension d (-1: all), detached; a copy when
// anything is cut, so that the statistics do not hold the whole tensor.
Tensor leading_block(const Tensor& x, const std::vector<int64_t>& extents);

class Attention {
 public:
  Attention(const AttentionConfig& cfg, ParamStore& ps, const std::string& name);
  // x [B, T, D] -> [B, T, D].
  Tensor forward(const Tensor& x, AttentionCapture* capture = nullptr) const;
  const AttentionConfig& config() const { return cfg_; }

  // Mask over [T, S] (1 = blocked) for T queries and S = slots + T keys; exposed for tests.
  static std::vector<uint8_t> make_mask(const AttentionConfig& cfg, int64_t T, int64_t slots);

 private:
  bool fused() const;
  Tensor composed_core(Tensor q, Tensor k, Tensor v, AttentionCapture* capture) const;
  float sigmoid_bias(int64_t T) const;
  Tensor weights_from_scores(const Tensor& s, int64_t T, int64_t slots) const;
  Tensor positional_bias(int64_t T, int64_t slots) const;

  AttentionConfig cfg_;
  int64_t dh_;
  Tensor wq_, wk_, wv_, wo_, bq_, bk_, bv_, bo_;
  Tensor q_norm_, k_norm_;
  Tensor kv_key_, kv_value_;       // [1 or H, d_h]
  Tensor sink_logit_;              // [H]
  Tensor wg_;                      // gate: [D, D] or [H, D]
  Tensor mlp_w1_, mlp_b1_, mlp_w2_, mlp_b2_;  // the mlp kernel, shared across heads
  Tensor relative_table_;          // [buckets, H]
};

}  // namespace sl::models
