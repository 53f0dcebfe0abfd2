// One multi-head attention module for every ablation of the sink studies. Scores
//   s_ij = q_i . k_j / sqrt(d_h)  (+ a positional bias b_ij for alibi / relative encodings)
// are turned into weights A_ij by the configured kernel (engine/attention_kernels.h declares
// them all), optionally normalised per row, and the output is o_i = sum_j A_ij v_j.
// Additions: a learnable key/value bias slot, a value bias on the output, off-by-one and
// sink-logit denominators, an output gate, QK-norm, and causal / prefix / sliding / bidirectional
// masks.
// Given a layer's KV cache (models/kv_cache.h), the T queries of x are the last T of the cached
// keys; given an edit (models/intervention.h), the forward computes the edited layer.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "engine/attention_kernels.h"
#include "engine/ops.h"
#include "engine/params.h"
#include "models/capture.h"
#include "models/intervention.h"
#include "models/kv_cache.h"

namespace sl::models {

struct AttentionConfig {
  int64_t d_model = 256, n_heads = 4;
  std::string kernel = "softmax";  // a name of attention_kernels()
  bool normalize = false;          // divide non-softmax weights by their row sum
  float sigmoid_bias = 0.f;        // b in sigma(s + b); NaN means -log T
  bool off_by_one = false;         // softmax with 1 added to the denominator
  bool sink_logit = false;         // learnable per-head logit in the denominator, no value
  bool kv_bias = false;            // an extra key/value slot at position -1
  bool kv_bias_key_learnable = true, kv_bias_value_learnable = true, kv_bias_per_head = false;
  bool value_bias = false;         // o_i = sum_j A_ij v_j + v_b: a value bias without a key slot
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

struct AttentionOutput {
  Tensor y;                                 // [B, T, D]
  std::optional<AttentionCapture> capture;  // when requested
};

class Attention {
 public:
  Attention(const AttentionConfig& cfg, ParamStore& ps, const std::string& name);
  // x [B, T, D] -> [B, T, D]; `capture` is within B and T (CaptureRequest::within). With
  // `cache`, x holds the newest T tokens and their keys and values join the cache's.
  AttentionOutput forward(const Tensor& x, const std::optional<CaptureRequest>& capture = std::nullopt,
                          const std::optional<AttentionEdit>& edit = std::nullopt, LayerCache* cache = nullptr) const;
  const AttentionConfig& config() const { return cfg_; }

  // Mask over [T, S] (1 = blocked) for T queries at places past .. past + T - 1 and
  // S = slots + past + T keys; exposed for tests.
  static std::vector<uint8_t> make_mask(const AttentionConfig& cfg, int64_t T, int64_t slots, int64_t past = 0);
  // Every query sees only keys at or before its own place (causal, sliding): what a KV cache needs.
  static bool sees_only_past(const AttentionConfig& cfg);

 private:
  enum class Mask { Causal, Prefix, Sliding, Bidirectional };
  enum class Pos { Rope, Alibi, Relative, Other };  // Other: positions act on the embeddings
  enum class Gate { None, Elementwise, Headwise };
  static Mask parse_mask(const std::string& mask);
  bool fused() const;
  Tensor composed_core(Tensor q, Tensor k, Tensor v, const std::optional<CaptureRequest>& capture,
                       const std::optional<AttentionEdit>& edit, AttentionCapture* out) const;
  float sigmoid_bias(int64_t T) const;
  Tensor weights_from_scores(const Tensor& s, int64_t T, int64_t slots, int64_t past) const;
  Tensor positional_bias(int64_t T, int64_t slots, int64_t past) const;

  AttentionConfig cfg_;
  const AttentionKernel* kernel_;  // parsed once from cfg_.kernel
  Mask mask_;
  Pos pos_;
  Gate gate_;
  int64_t dh_;
  Tensor wq_, wk_, wv_, wo_, bq_, bk_, bv_, bo_;
  Tensor q_norm_, k_norm_;
  Tensor kv_key_, kv_value_;       // [1 or H, d_h]
  Tensor value_bias_;              // [1 or H, d_h]
  Tensor sink_logit_;              // [H]
  Tensor wg_;                      // gate: [D, D] or [H, D]
  std::vector<Tensor> kernel_params_;  // the kernel's own (mlp), shared across heads
  Tensor relative_table_;          // [buckets, H]
};

}  // namespace sl::models
