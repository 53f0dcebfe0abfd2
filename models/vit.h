// A Vision Transformer (Dosovitskiy et al. 2021) with optional registers (Darcet et al. 2024).
// An image [C, H, W] is cut into P = (H/p)^2 patches of p x p pixels, flattened channel-major.
//   tokens   = [CLS, r_1 .. r_R, W_e x_1 + pos_1, ..., W_e x_P + pos_P]    (1 + R + P tokens)
//   h_L      = Trunk(tokens), the decoder's trunk (models/trunk.h) with a bidirectional mask
//   logits   = W_head h_L[CLS]       or   W_head mean over patches of h_L
// Positions are added to patch embeddings only: learned [P, D], or the fixed 2-D sinusoidal
// table (first half of D encodes the patch row, second half its column).
#pragma once
#include <string>
#include <vector>

#include "models/trunk.h"

namespace sl::models {

struct ViTConfig : TrunkConfig {
  int64_t image_size = 28, patch = 4, channels = 1, classes = 10, registers = 0;
  std::string pos = "learned";  // learned | sinusoidal
  std::string pool = "cls";     // cls | mean
  ViTConfig() {
    d_model = 64, d_ff = 256;
    norm = "layernorm", ffn = "gelu";
    bias = true;
  }
  // The token sequence: CLS, the registers, then the patches row by row.
  int64_t grid() const { return image_size / patch; }  // patches per side
  int64_t first_patch() const { return 1 + registers; }  // token index of patch 0
  int64_t tokens() const { return first_patch() + grid() * grid(); }
};

class ViT {
 public:
  ViT(const ViTConfig& cfg, ParamStore& ps);
  // images [B, C, H, W] (no gradient needed) -> logits [B, classes].
  ModelOutput forward(const Tensor& images, const std::optional<CaptureRequest>& capture = std::nullopt) const;
  const ViTConfig& config() const { return cfg_; }
  // [B, C, H, W] -> [B, P, C p p]: patch (r, q) is row r * grid + q, flattened channel-major.
  Tensor patchify(const Tensor& images) const;

 private:
  ViTConfig cfg_;
  Tensor patch_w_, patch_b_, cls_, registers_, pos_, head_w_, head_b_;
  Trunk trunk_;
};

}  // namespace sl::models
