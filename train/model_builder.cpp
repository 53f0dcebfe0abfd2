#include "train/model_builder.h"

#include <cmath>

#include "train/schema.h"

namespace sl::train {

models::DecoderConfig decoder_config(const Config& cfg, int64_t vocab_size) {
  models::DecoderConfig d;
  d.vocab_size = cfg.i("model.vocab_size") > 0 ? cfg.i("model.vocab_size") : vocab_size;
  SL_CHECK(d.vocab_size >= vocab_size, "model.vocab_size " + std::to_string(d.vocab_size) +
                                           " is smaller than the data's vocabulary of " + std::to_string(vocab_size));
  d.d_model = cfg.i("model.d_model");
  d.n_layers = cfg.i("model.n_layers");
  d.n_heads = cfg.i("model.n_heads");
  d.context = cfg.i("model.context");
  d.ffn = cfg.s("model.ffn");
  d.d_ff = cfg.i("model.d_ff") > 0 ? cfg.i("model.d_ff") : auto_d_ff(d.d_model, d.ffn);
  d.norm = cfg.s("model.norm");
  d.norm_placement = cfg.s("model.norm_placement");
  d.norm_eps = (float)cfg.f("model.norm_eps");
  d.pos = cfg.s("model.pos");
  d.bias = cfg.b("model.bias");
  d.tie_embeddings = cfg.b("model.tie_embeddings");
  d.init_std = (float)cfg.f("model.init_std");
  d.sink_token = cfg.b("attention.sink_token");

  models::AttentionConfig& a = d.attn;
  a.kernel = cfg.s("attention.kernel");
  a.normalize = cfg.b("attention.normalize");
  // auto: b = -log(context), a constant of the model, so that a shorter forward (the statistics'
  // probe, sampling) runs the model that was trained rather than one with another bias.
  a.sigmoid_bias = cfg.is_auto("attention.sigmoid_bias") ? -std::log((float)d.context)
                                                         : (float)cfg.f("attention.sigmoid_bias");
  a.off_by_one = cfg.b("attention.off_by_one");
  a.sink_logit = cfg.b("attention.sink_logit");
  a.kv_bias = cfg.b("attention.kv_bias");
  a.kv_bias_key_learnable = cfg.s("attention.kv_bias_key") == "learnable";
  a.kv_bias_value_learnable = cfg.s("attention.kv_bias_value") == "learnable";
  a.kv_bias_per_head = cfg.b("attention.kv_bias_per_head");
  a.value_bias = cfg.b("attention.value_bias");
  a.gate = cfg.s("attention.gate");
  a.qk_norm = cfg.b("attention.qk_norm");
  a.mask = cfg.s("attention.mask");
  a.prefix_len = cfg.i("attention.prefix_len");
  a.window = cfg.i("attention.window");
  a.mlp_hidden = cfg.i("attention.mlp_hidden");
  a.rope_theta = (float)cfg.f("model.rope_theta");
  a.relative_buckets = cfg.i("model.relative_buckets");
  a.relative_max_distance = cfg.i("model.relative_max_distance");

  models::MoEConfig& m = d.moe;
  m.experts = cfg.i("moe.experts");
  m.top_k = cfg.i("moe.top_k");
  m.shared_experts = cfg.i("moe.shared_experts");
  m.router = cfg.s("moe.router");
  m.renormalize = cfg.b("moe.renormalize");
  m.capacity_factor = (float)cfg.f("moe.capacity_factor");
  m.expert.d_ff = cfg.i("moe.d_ff");  // 0 = model.d_ff; the rest of the expert shape is the decoder's
  d.moe_every = cfg.i("moe.every");
  d.moe_aux_weight = (float)cfg.f("moe.aux_loss");
  d.moe_z_weight = (float)cfg.f("moe.z_loss");
  return d;
}

models::ViTConfig vit_config(const Config& cfg) {
  // The transformer trunk is the decoder's (norms, FFN, attention variants) with a
  // bidirectional mask and positions added to the patch embeddings.
  models::DecoderConfig d = decoder_config(cfg, 1);
  models::ViTConfig v;
  v.image_size = cfg.i("vit.image_size");
  v.patch = cfg.i("vit.patch");
  v.channels = cfg.i("vit.channels");
  v.classes = cfg.i("vit.classes");
  v.registers = cfg.i("vit.registers");
  v.pos = cfg.s("vit.pos");
  v.pool = cfg.s("vit.pool");
  static_cast<models::TrunkConfig&>(v) = d;
  if (cfg.is_auto("attention.sigmoid_bias")) v.attn.sigmoid_bias = NAN;  // -log T: every forward sees all patches
  return v;
}

}  // namespace sl::train
