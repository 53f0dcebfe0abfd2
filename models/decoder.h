// A decoder-only language model. One class covers LLaMA-style (RMSNorm, RoPE, SwiGLU, no
// biases) and GPT-2-style (LayerNorm, learned positions, GELU, biases) models: the presets
// are only different values of DecoderConfig.
//   h_0 = E[x] (+ P)      h_L = Trunk(h_0)  (models/trunk.h)      logits = h_L W_out
// A sink token, when configured, is a learnable embedding prepended to every sequence.
// decode() is the same model fed a few tokens at a time through a KV cache (models/kv_cache.h).
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "models/trunk.h"

namespace sl::models {

struct DecoderConfig : TrunkConfig {
  int64_t vocab_size = 256, context = 256;
  std::string pos = "rope";  // rope | alibi | relative act in the attention; learned | sinusoidal here
  bool tie_embeddings = false;
  bool sink_token = false;  // a learnable token prepended to every sequence
};

class Decoder {
 public:
  Decoder(const DecoderConfig& cfg, ParamStore& ps);
  // tokens: B*T ids, row-major -> logits [B*T, vocab] for the T real positions; a capture's
  // block includes the sink token.
  ModelOutput forward(const std::vector<int32_t>& tokens, int64_t B, int64_t T,
                      const std::optional<CaptureRequest>& capture = std::nullopt,
                      const std::optional<Intervention>& intervention = std::nullopt) const;
  // The same forward ending in cross_entropy(logits, targets, ignore_index, z_loss) with the
  // output layer fused into the loss (linear_cross_entropy): .loss is set and the logits never
  // leave the op (.logits is undefined).
  ModelOutput loss(const std::vector<int32_t>& tokens, int64_t B, int64_t T, const std::vector<int32_t>& targets,
                   int32_t ignore_index, float z_loss, const std::optional<CaptureRequest>& capture = std::nullopt) const;
  // The next T tokens of each of B sequences (B*T ids, row-major), after those `cache` has seen
  // -> logits [B*T, vocab]. The sink token enters the cache before the first tokens.
  ModelOutput decode(const std::vector<int32_t>& tokens, int64_t B, int64_t T, KVCache& cache) const;
  KVCache make_cache(const CachePolicy& policy) const { return KVCache(policy, cfg_.n_layers, positions()); }
  // Whether decode() computes what forward() does: every query sees only earlier keys.
  bool can_decode() const { return Attention::sees_only_past(cfg_.attn); }
  int64_t positions() const { return cfg_.context + (cfg_.sink_token ? 1 : 0); }  // places, a sink token's included
  const DecoderConfig& config() const { return cfg_; }
  bool is_moe_block(int64_t layer) const { return trunk_.is_moe_block(layer); }

 private:
  // h_0 = E[x] (+ P at places place, place + 1, ...) [B, T (+1), D], the sink token first when `with_sink`.
  Tensor embed(const std::vector<int32_t>& tokens, int64_t B, int64_t T, bool with_sink, int64_t place) const;
  // The trunk's output with .h the last hidden states [B*T, D] of the T real positions, which the
  // output layer reads.
  TrunkOutput hidden(const std::vector<int32_t>& tokens, int64_t B, int64_t T, const std::optional<CaptureRequest>& capture,
                     const std::optional<Intervention>& intervention) const;
  TrunkOutput real_positions(TrunkOutput out, int64_t B, int64_t T, bool with_sink) const;
  const Tensor& output_layer() const { return cfg_.tie_embeddings ? wte_ : lm_head_; }
  DecoderConfig cfg_;
  Tensor wte_, wpe_, lm_head_, sink_;
  Tensor sinusoidal_;  // fixed [context (+1), D] table when pos == sinusoidal
  Trunk trunk_;
};

// The fixed sinusoidal table of Vaswani et al.: P[t, 2i] = sin(t / 10000^(2i/D)), P[t, 2i+1] = cos(.).
Tensor sinusoidal_positions(int64_t n, int64_t d);

}  // namespace sl::models
