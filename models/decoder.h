// A decoder-only language model. One class covers LLaMA-style (RMSNorm, RoPE, SwiGLU, no
// biases) and GPT-2-style (LayerNorm, learned positions, GELU, biases) models: the presets
// are only different values of DecoderConfig.
//   h_0 = E[x] (+ P)           pre-norm:  h = h + Attn(N1(h));  h = h + FFN(N2(h))
//   logits = N_f(h_L) W_out    post-norm: h = N1(h + Attn(h));  h = N2(h + FFN(h))
// With moe.experts > 0, every moe_every-th block (the last of each group: blocks every-1,
// 2*every-1, ...) has a sparse MoE layer as its FFN; the router losses of a forward pass,
//   router_loss = sum over MoE blocks of (aux_weight * aux + z_weight * z),
// are then available from router_loss() for the task to add to its loss.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "models/attention.h"
#include "models/ffn.h"
#include "models/moe.h"
#include "models/norm.h"

namespace sl::models {

struct DecoderConfig {
  int64_t vocab_size = 256, d_model = 256, n_layers = 4, n_heads = 4, d_ff = 688, context = 256;
  std::string norm = "rmsnorm", norm_placement = "pre", pos = "rope", ffn = "swiglu";
  bool bias = false, tie_embeddings = false;
  bool sink_token = false;  // a learnable token prepended to every sequence
  float init_std = 0.02f, norm_eps = 1e-5f;
  AttentionConfig attn;     // kernel, masks and additions; dimensions are taken from above
  MoEConfig moe{FFNConfig{}, /*experts=*/0};  // 0 experts: dense FFNs; expert kind/bias/init follow the above
  int64_t moe_every = 1;
  float moe_aux_weight = 0.01f, moe_z_weight = 0.001f;
};

// Detached activations the sink statistics read, filled when passed to forward(). rows / positions
// (set by the caller, -1 = all) keep only the first `rows` sequences and their first `positions`
// tokens (plus the sink token, when the model has one, and the attention's bias slots): with a
// causal mask, what a forward of just those tokens would capture.
struct DecoderCapture {
  int64_t rows = -1, positions = -1;
  std::vector<AttentionCapture> attn;  // per layer
  std::vector<Tensor> hidden;          // per layer, the residual stream [B, T', D] after the block
  std::vector<MoECapture> moe;         // per layer; tokens == 0 for dense blocks
};

class Decoder {
 public:
  Decoder(const DecoderConfig& cfg, ParamStore& ps);
  // tokens: B*T ids, row-major. Returns logits [B*T, vocab] for the T real positions.
  Tensor forward(const std::vector<int32_t>& tokens, int64_t B, int64_t T, DecoderCapture* capture = nullptr) const;
  // cross_entropy(forward(tokens, ...), targets, ignore_index, z_loss) with the output layer
  // fused into the loss (linear_cross_entropy): the logits never leave the op.
  Tensor loss(const std::vector<int32_t>& tokens, int64_t B, int64_t T, const std::vector<int32_t>& targets,
              int32_t ignore_index, float z_loss, DecoderCapture* capture = nullptr) const;
  const DecoderConfig& config() const { return cfg_; }
  bool is_moe_block(int64_t layer) const;
  // The weighted router losses of the last forward pass (a scalar in its graph); undefined
  // when the model has no MoE block.
  const Tensor& router_loss() const { return router_loss_; }

 private:
  struct Block {
    Norm norm1, norm2;
    Attention attn;
    std::optional<FFN> ffn;  // dense blocks
    std::optional<MoE> moe;  // MoE blocks
  };
  Tensor feed_forward(const Block& b, const Tensor& x, MoECapture* capture) const;
  // The last hidden states [B*T, D] of the T real positions, which the output layer reads.
  Tensor hidden(const std::vector<int32_t>& tokens, int64_t B, int64_t T, DecoderCapture* capture) const;
  const Tensor& output_layer() const { return cfg_.tie_embeddings ? wte_ : lm_head_; }
  DecoderConfig cfg_;
  Tensor wte_, wpe_, lm_head_, sink_;
  Tensor sinusoidal_;  // fixed [context (+1), D] table when pos == sinusoidal
  std::vector<Block> blocks_;
  Norm final_norm_;
  mutable Tensor router_loss_;
};

// Whether block `layer` has an MoE layer as its FFN (moe.experts > 0, every moe_every-th block).
bool is_moe_block(const DecoderConfig& c, int64_t layer);

// The fixed sinusoidal table of Vaswani et al.: P[t, 2i] = sin(t / 10000^(2i/D)), P[t, 2i+1] = cos(.).
Tensor sinusoidal_positions(int64_t n, int64_t d);

}  // namespace sl::models
