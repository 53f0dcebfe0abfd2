#include "models/trunk.h"

#include <cmath>

namespace sl::models {

Trunk::Trunk(const TrunkConfig& c, ParamStore& ps) : cfg_(c) {
  const int64_t D = c.d_model;
  // GPT-2's scaling of the residual projections keeps the residual stream's variance flat in depth.
  const float out_std = c.init_std / std::sqrt(2.f * c.n_layers);
  AttentionConfig ac = c.attn;
  ac.d_model = D;
  ac.n_heads = c.n_heads;
  ac.bias = c.bias;
  ac.init_std = c.init_std;
  ac.out_init_std = out_std;
  ac.norm_eps = c.norm_eps;
  const FFNConfig fc{D, c.d_ff, c.ffn, c.bias, c.init_std, out_std};
  MoEConfig mc = c.moe;
  mc.expert = FFNConfig{D, mc.expert.d_ff > 0 ? mc.expert.d_ff : c.d_ff, c.ffn, c.bias, c.init_std, out_std};
  for (int64_t l = 0; l < c.n_layers; ++l) {
    const std::string name = "blocks." + std::to_string(l);
    Block b{Norm(c.norm, D, c.norm_eps, ps, name + ".norm1"), Norm(c.norm, D, c.norm_eps, ps, name + ".norm2"),
            Attention(ac, ps, name + ".attn"), std::nullopt, std::nullopt};
    if (is_moe_block(l)) b.moe.emplace(mc, ps, name + ".moe");
    else b.ffn.emplace(fc, ps, name + ".ffn");
    blocks_.push_back(std::move(b));
  }
  if (c.norm_placement == "pre") final_norm_ = Norm(c.norm, D, c.norm_eps, ps, "final_norm");
}

bool is_moe_block(const TrunkConfig& c, int64_t layer) {
  return c.moe.experts > 0 && layer % c.moe_every == c.moe_every - 1;
}

bool Trunk::is_moe_block(int64_t layer) const { return models::is_moe_block(cfg_, layer); }

TrunkOutput Trunk::forward(Tensor h, const std::optional<CaptureRequest>& capture,
                           const std::optional<Intervention>& intervention, KVCache* cache) const {
  const auto& c = cfg_;
  const bool pre = c.norm_placement == "pre";
  const int64_t T = h.size(1);
  TrunkOutput out;
  if (capture) out.capture.emplace();
  // Pre-norm, the residual stream is h + pending, the last sublayer's output not yet added: the
  // norm that reads the stream next adds it in the same pass over the rows (add_rms_norm).
  Tensor pending;
  auto normed = [&](const Norm& n) {
    if (!pending.defined()) return n.forward(h);
    ResidualNorm s = n.forward(h, pending);
    h = s.sum, pending = Tensor();
    return s.normed;
  };
  for (size_t l = 0; l < blocks_.size(); ++l) {
    const Block& b = blocks_[l];
    const bool edited = intervention && intervention->at((int64_t)l);
    MoECapture routing;
    auto feed_forward = [&](const Tensor& x) {
      if (b.ffn) return b.ffn->forward(x);
      MoEOutput o = b.moe->forward(x, capture ? &routing : nullptr);
      Tensor loss = add(scale(o.aux_loss, c.moe_aux_weight), scale(o.z_loss, c.moe_z_weight));
      out.aux_loss = out.aux_loss.defined() ? add(out.aux_loss, loss) : loss;
      return o.y;
    };
    AttentionOutput a = b.attn.forward(pre ? normed(b.norm1) : h, capture,
                                       edited ? intervention->attention : std::nullopt,
                                       cache ? &cache->layer((int64_t)l) : nullptr);
    if (pre) {  // h + attn(norm1(h)), then + ffn(norm2(that)), each add made by the norm after it
      pending = a.y;
      pending = feed_forward(normed(b.norm2));
    } else {  // norm1(h + attn(h)), then norm2(that + ffn(that))
      h = b.norm1.forward(h, a.y).normed;
      h = b.norm2.forward(h, feed_forward(h)).normed;
    }
    if (edited && intervention->hidden) {
      if (pending.defined()) h = add(h, pending), pending = Tensor();
      h = ablate_massive_activations(h, *intervention->hidden);
    }
    if (!capture) continue;
    // The one place the block's leading rows and positions are cut (attention cuts its own).
    const int64_t rows = capture->rows, n = capture->positions;
    out.capture->attn.push_back(std::move(*a.capture));
    Tensor block_out = leading_block(h, {rows, n});  // the stream after the block: h + pending
    out.capture->hidden.push_back(pending.defined() ? add(block_out, leading_block(pending, {rows, n})) : block_out);
    if (routing.tokens > 0 && (rows * T != routing.tokens || n != T)) {
      leading_tokens(routing.choice, T, rows, n, routing.top_k);
      leading_tokens(routing.kept, T, rows, n, routing.top_k);
      leading_tokens(routing.output_norm, T, rows, n, routing.top_k);
      leading_tokens(routing.scores, T, rows, n, routing.experts);
      routing.tokens = rows * n;
    }
    out.capture->moe.push_back(std::move(routing));
  }
  if (pre) h = normed(final_norm_);
  out.h = h;
  return out;
}

}  // namespace sl::models
