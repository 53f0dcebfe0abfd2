// A Vision Transformer (Dosovitskiy et al. 2021) with optional registers (Darcet et al. 2024).
// An image [C, H, W] is cut into P = (H/p)^2 patches of p x p pixels, flattened channel-major.
//   tokens   = [CLS, r_1 .. r_R, W_e x_1 + pos_1, ..., W_e x_P + pos_P]    (1 + R + P tokens)
//   blocks   = the decoder's blocks with a bidirectional mask: pre-norm h = h + Attn(N1(h)),
//              h = h + FFN(N2(h)) (post-norm likewise)
//   logits   = W_head N_f(h_L)[CLS]       or   W_head mean over patches of N_f(h_L)
// Positions are added to patch embeddings only: learned [P, D], or the fixed 2-D sinusoidal
// table (first half of D encodes the patch row, second half its column).
#pragma once
#include <string>
#include <vector>

#include "models/attention.h"
#include "models/ffn.h"
#include "models/norm.h"

namespace sl::models {

struct ViTConfig {
  int64_t image_size = 28, patch = 4, channels = 1, classes = 10, registers = 0;
  int64_t d_model = 64, n_layers = 4, n_heads = 4, d_ff = 256;
  std::string norm = "layernorm", norm_placement = "pre", ffn = "gelu";
  std::string pos = "learned";  // learned | sinusoidal
  std::string pool = "cls";     // cls | mean
  bool bias = true;
  float init_std = 0.02f, norm_eps = 1e-5f;
  AttentionConfig attn;  // kernel and additions; mask, pos and dimensions are set by the ViT
};

struct ViTCapture {
  std::vector<AttentionCapture> attn;  // per layer
  std::vector<Tensor> hidden;          // per layer, [B, 1 + R + P, D] after the block
};

class ViT {
 public:
  ViT(const ViTConfig& cfg, ParamStore& ps);
  // images [B, C, H, W] (no gradient needed) -> logits [B, classes].
  Tensor forward(const Tensor& images, ViTCapture* capture = nullptr) const;
  const ViTConfig& config() const { return cfg_; }
  int64_t grid() const { return cfg_.image_size / cfg_.patch; }  // patches per side
  int64_t tokens() const { return 1 + cfg_.registers + grid() * grid(); }
  int64_t first_patch() const { return 1 + cfg_.registers; }   // token index of patch 0
  // [B, C, H, W] -> [B, P, C p p]: patch (r, q) is row r * grid + q, flattened channel-major.
  Tensor patchify(const Tensor& images) const;

 private:
  struct Block {
    Norm norm1, norm2;
    Attention attn;
    FFN ffn;
  };
  ViTConfig cfg_;
  Tensor patch_w_, patch_b_, cls_, registers_, pos_, head_w_, head_b_;
  std::vector<Block> blocks_;
  Norm final_norm_;
};

}  // namespace sl::models
