#include "models/vit.h"

#include <algorithm>
#include <cmath>

#include "models/decoder.h"

namespace sl::models {

ViT::ViT(const ViTConfig& c, ParamStore& ps) : cfg_(c) {
  SL_CHECK(c.patch >= 1 && c.image_size % c.patch == 0, "vit: image_size " + std::to_string(c.image_size) +
                                                            " must be a multiple of patch " + std::to_string(c.patch));
  SL_CHECK(c.pos == "learned" || c.pos == "sinusoidal", "vit: unknown pos '" + c.pos + "' (valid: learned, sinusoidal)");
  SL_CHECK(c.pool == "cls" || c.pool == "mean", "vit: unknown pool '" + c.pool + "' (valid: cls, mean)");
  const int64_t D = c.d_model, G = c.grid(), P = G * G;
  patch_w_ = ps.add("patch_embed.weight", {D, c.channels * c.patch * c.patch}, Init::normal(c.init_std), true);
  patch_b_ = ps.add("patch_embed.bias", {D}, Init::zeros(), false);
  cls_ = ps.add("cls_token", {1, 1, D}, Init::normal(c.init_std), true);
  if (c.registers > 0) registers_ = ps.add("registers", {1, c.registers, D}, Init::normal(c.init_std), true);
  if (c.pos == "learned") {
    pos_ = ps.add("pos_embed", {P, D}, Init::normal(c.init_std), true);
  } else {
    Tensor rows = sinusoidal_positions(G, D / 2), cols = sinusoidal_positions(G, D - D / 2);
    pos_ = Tensor::empty({P, D});
    for (int64_t r = 0; r < G; ++r)
      for (int64_t q = 0; q < G; ++q) {
        float* dst = pos_.data() + (r * G + q) * D;
        std::copy_n(rows.data() + r * (D / 2), D / 2, dst);
        std::copy_n(cols.data() + q * (D - D / 2), D - D / 2, dst + D / 2);
      }
  }

  TrunkConfig trunk = c;
  trunk.attn.pos = "none";  // positions live in the patch embeddings
  trunk.attn.mask = "bidirectional";
  trunk_ = Trunk(trunk, ps);
  head_w_ = ps.add("head.weight", {c.classes, D}, Init::normal(c.init_std), true);
  head_b_ = ps.add("head.bias", {c.classes}, Init::zeros(), false);
}

Tensor ViT::patchify(const Tensor& images_in) const {
  const int64_t C = cfg_.channels, S = cfg_.image_size, p = cfg_.patch, G = cfg_.grid();
  SL_CHECK(images_in.dim() == 4 && images_in.size(1) == C && images_in.size(2) == S && images_in.size(3) == S,
           "vit: images must be [B, " + std::to_string(C) + ", " + std::to_string(S) + ", " + std::to_string(S) +
               "], got " + shape_str(images_in.shape()));
  // [B, C, G, p, G, p] -> [B, G, G, C, p, p]: a differentiable view and one copy.
  const int64_t B = images_in.size(0);
  return images_in.reshape({B, C, G, p, G, p}).permute({0, 2, 4, 1, 3, 5}).contiguous().reshape({B, G * G, C * p * p});
}

ModelOutput ViT::forward(const Tensor& images, const std::optional<CaptureRequest>& capture) const {
  const ViTConfig& c = cfg_;
  const int64_t B = images.size(0), D = c.d_model, P = c.grid() * c.grid();
  Tensor patches = add(linear(patchify(images), patch_w_, patch_b_), pos_);  // [B, P, D]
  std::vector<Tensor> parts{add(Tensor::zeros({B, 1, D}), cls_)};
  if (registers_.defined()) parts.push_back(add(Tensor::zeros({B, c.registers, D}), registers_));
  parts.push_back(patches);
  Tensor h = concat(parts, 1);

  std::optional<CaptureRequest> block;
  if (capture) block = capture->within(B, h.size(1));
  TrunkOutput out = trunk_.forward(h, block);
  h = out.h;
  Tensor pooled = c.pool == "cls" ? slice(h, 1, 0, 1) : mean(slice(h, 1, c.first_patch(), c.first_patch() + P), 1, true);
  return {linear(pooled.reshape({B, D}), head_w_, head_b_), Tensor(), out.aux_loss, std::move(out.capture)};
}

}  // namespace sl::models
