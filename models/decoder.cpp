#include "models/decoder.h"

#include <algorithm>
#include <cmath>
#include <type_traits>

namespace sl::models {

Tensor sinusoidal_positions(int64_t n, int64_t d) {
  Tensor p = Tensor::empty({n, d});
  for (int64_t t = 0; t < n; ++t)
    for (int64_t i = 0; i < d; i += 2) {
      double angle = t / std::pow(10000.0, (double)i / d);
      p.data()[t * d + i] = (float)std::sin(angle);
      if (i + 1 < d) p.data()[t * d + i + 1] = (float)std::cos(angle);
    }
  return p;
}

Decoder::Decoder(const DecoderConfig& c, ParamStore& ps) : cfg_(c) {
  const int64_t D = c.d_model;
  const int64_t positions = c.context + (c.sink_token ? 1 : 0);
  // GPT-2's scaling of the residual projections keeps the residual stream's variance flat in depth.
  const float out_std = c.init_std / std::sqrt(2.f * c.n_layers);
  wte_ = ps.add("wte", {c.vocab_size, D}, Init::normal(c.init_std), true);
  if (c.pos == "learned") wpe_ = ps.add("wpe", {positions, D}, Init::normal(c.init_std), true);
  if (c.pos == "sinusoidal") sinusoidal_ = sinusoidal_positions(positions, D);
  if (c.sink_token) sink_ = ps.add("sink_token", {1, 1, D}, Init::normal(c.init_std), true);

  AttentionConfig ac = c.attn;
  ac.d_model = D;
  ac.n_heads = c.n_heads;
  ac.bias = c.bias;
  ac.pos = c.pos;
  ac.init_std = c.init_std;
  ac.out_init_std = out_std;
  ac.norm_eps = c.norm_eps;
  FFNConfig fc{D, c.d_ff, c.ffn, c.bias, c.init_std, out_std};
  MoEConfig mc = c.moe;
  mc.expert = FFNConfig{D, mc.expert.d_ff > 0 ? mc.expert.d_ff : c.d_ff, c.ffn, c.bias, c.init_std, out_std};
  for (int64_t l = 0; l < c.n_layers; ++l) {
    std::string name = "blocks." + std::to_string(l);
    Block b{Norm(c.norm, D, c.norm_eps, ps, name + ".norm1"), Norm(c.norm, D, c.norm_eps, ps, name + ".norm2"),
            Attention(ac, ps, name + ".attn"), std::nullopt, std::nullopt};
    if (is_moe_block(l)) b.moe.emplace(mc, ps, name + ".moe");
    else b.ffn.emplace(fc, ps, name + ".ffn");
    blocks_.push_back(std::move(b));
  }
  if (c.norm_placement == "pre") final_norm_ = Norm(c.norm, D, c.norm_eps, ps, "final_norm");
  if (!c.tie_embeddings) lm_head_ = ps.add("lm_head", {c.vocab_size, D}, Init::normal(c.init_std), true);
}

bool is_moe_block(const DecoderConfig& c, int64_t layer) {
  return c.moe.experts > 0 && layer % c.moe_every == c.moe_every - 1;
}

bool Decoder::is_moe_block(int64_t layer) const { return models::is_moe_block(cfg_, layer); }

Tensor Decoder::feed_forward(const Block& b, const Tensor& x, MoECapture* capture) const {
  if (b.ffn) return b.ffn->forward(x);
  MoEOutput o = b.moe->forward(x, capture);
  Tensor loss = add(scale(o.aux_loss, cfg_.moe_aux_weight), scale(o.z_loss, cfg_.moe_z_weight));
  router_loss_ = router_loss_.defined() ? add(router_loss_, loss) : loss;
  return o.y;
}

// The routing of the first `rows` sequences' first `n` tokens, of a capture over rows of T tokens.
static void keep_leading(MoECapture& m, int64_t T, int64_t rows, int64_t n) {
  if (m.tokens == 0 || (rows * T == m.tokens && n == T)) return;
  auto cut = [&](auto& v, int64_t per_token) {
    std::remove_reference_t<decltype(v)> out;
    for (int64_t b = 0; b < rows; ++b) out.insert(out.end(), v.begin() + b * T * per_token, v.begin() + (b * T + n) * per_token);
    v = std::move(out);
  };
  cut(m.choice, m.top_k);
  cut(m.kept, m.top_k);
  cut(m.output_norm, m.top_k);
  cut(m.scores, m.experts);
  m.tokens = rows * n;
}

Tensor Decoder::forward(const std::vector<int32_t>& tokens, int64_t B, int64_t T, DecoderCapture* capture) const {
  return linear(hidden(tokens, B, T, capture), output_layer());
}

Tensor Decoder::loss(const std::vector<int32_t>& tokens, int64_t B, int64_t T, const std::vector<int32_t>& targets,
                     int32_t ignore_index, float z_loss, DecoderCapture* capture) const {
  return linear_cross_entropy(hidden(tokens, B, T, capture), output_layer(), targets, ignore_index, z_loss);
}

Tensor Decoder::hidden(const std::vector<int32_t>& tokens, int64_t B, int64_t T, DecoderCapture* capture) const {
  const auto& c = cfg_;
  const int64_t D = c.d_model;
  SL_CHECK((int64_t)tokens.size() == B * T, "decoder: " + std::to_string(tokens.size()) + " tokens for batch " +
                                                 std::to_string(B) + " x length " + std::to_string(T));
  SL_CHECK(T <= c.context, "decoder: sequence length " + std::to_string(T) + " exceeds the context " + std::to_string(c.context));

  Tensor h = embedding(wte_, tokens).reshape({B, T, D});
  if (sink_.defined()) h = concat({add(Tensor::zeros({B, 1, D}), sink_), h}, 1);
  const int64_t Tp = h.size(1);
  if (wpe_.defined()) h = add(h, slice(wpe_, 0, 0, Tp));
  if (sinusoidal_.defined()) h = add(h, slice(sinusoidal_, 0, 0, Tp));

  // The captured block: rows x n positions of the Tp (the sink token is one more position).
  const int64_t rows = capture && capture->rows >= 0 ? std::min(capture->rows, B) : B;
  const int64_t n = capture && capture->positions >= 0 ? std::min(capture->positions + Tp - T, Tp) : Tp;
  if (capture) {
    AttentionCapture block;
    block.rows = rows;
    block.positions = n;
    capture->attn.assign(c.n_layers, block);
    capture->moe.assign(c.n_layers, {});
    capture->hidden.clear();
  }
  router_loss_ = Tensor();
  for (int64_t l = 0; l < c.n_layers; ++l) {
    const Block& b = blocks_[l];
    AttentionCapture* ac = capture ? &capture->attn[l] : nullptr;
    MoECapture* mc = capture ? &capture->moe[l] : nullptr;
    if (c.norm_placement == "pre") {
      h = add(h, b.attn.forward(b.norm1.forward(h), ac));
      h = add(h, feed_forward(b, b.norm2.forward(h), mc));
    } else {
      h = b.norm1.forward(add(h, b.attn.forward(h, ac)));
      h = b.norm2.forward(add(h, feed_forward(b, h, mc)));
    }
    if (capture) {
      capture->hidden.push_back(leading_block(h, {rows, n}));
      keep_leading(capture->moe[l], Tp, rows, n);
    }
  }
  if (c.norm_placement == "pre") h = final_norm_.forward(h);
  if (sink_.defined()) h = slice(h, 1, 1, Tp);
  return h.reshape({B * T, D});
}

}  // namespace sl::models
