// The transformer trunk the decoder and the ViT share: L blocks, then the final norm.
//   pre-norm:   h = h + Attn(N1(h));  h = h + FFN(N2(h));   after the last block h = N_f(h)
//   post-norm:  h = N1(h + Attn(h));  h = N2(h + FFN(h))
// With moe.experts > 0, every moe_every-th block (the last of each group: blocks every-1,
// 2*every-1, ...) has a sparse MoE layer as its FFN, and the forward's auxiliary loss is
//   aux = sum over MoE blocks of (aux_weight * aux + z_weight * z).
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "models/attention.h"
#include "models/capture.h"
#include "models/ffn.h"
#include "models/intervention.h"
#include "models/kv_cache.h"
#include "models/moe.h"
#include "models/norm.h"

namespace sl::models {

struct TrunkConfig {
  int64_t d_model = 256, n_layers = 4, n_heads = 4, d_ff = 688;
  std::string norm = "rmsnorm", norm_placement = "pre", ffn = "swiglu";
  bool bias = false;
  float init_std = 0.02f, norm_eps = 1e-5f;
  AttentionConfig attn;  // kernel, mask, positions and additions; dimensions are taken from above
  MoEConfig moe{FFNConfig{}, /*experts=*/0};  // 0 experts: dense FFNs; expert kind/bias/init follow the above
  int64_t moe_every = 1;
  float moe_aux_weight = 0.01f, moe_z_weight = 0.001f;
};

// Whether block `layer` has an MoE layer as its FFN.
bool is_moe_block(const TrunkConfig& c, int64_t layer);

// The detached activations of a request's leading block, per layer.
struct Capture {
  std::vector<AttentionCapture> attn;
  std::vector<Tensor> hidden;   // the residual stream [rows, positions, D] after each block
  std::vector<MoECapture> moe;  // tokens == 0 for dense blocks
};

struct TrunkOutput {
  Tensor h;                        // [B, T, D], after the final norm (pre-norm)
  Tensor aux_loss;                 // undefined without MoE blocks
  std::optional<Capture> capture;  // when requested
};

// What a model's forward returns.
struct ModelOutput {
  Tensor logits;
  Tensor loss;                     // when the model computed its loss itself (Decoder::loss)
  Tensor aux_loss;                 // the router losses of MoE blocks; undefined without
  std::optional<Capture> capture;  // when requested
};

class Trunk {
 public:
  Trunk() = default;
  // Declares blocks.<l>.* and final_norm in `ps`, in that order.
  Trunk(const TrunkConfig& cfg, ParamStore& ps);
  // h [B, T, D]; `capture` is already within B and T (CaptureRequest::within). With `cache`, h
  // holds the newest T tokens (the cache has admitted them).
  TrunkOutput forward(Tensor h, const std::optional<CaptureRequest>& capture,
                      const std::optional<Intervention>& intervention = std::nullopt, KVCache* cache = nullptr) const;
  bool is_moe_block(int64_t layer) const;

 private:
  struct Block {
    Norm norm1, norm2;
    Attention attn;
    std::optional<FFN> ffn;  // dense blocks
    std::optional<MoE> moe;  // MoE blocks
  };
  TrunkConfig cfg_;
  std::vector<Block> blocks_;
  Norm final_norm_;
};

}  // namespace sl::models
