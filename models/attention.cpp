#include "models/attention.h"

#include <cmath>
#include <limits>

namespace sl::models {

namespace {

template <class E>
E one_of(const char* key, const std::string& v, std::initializer_list<std::pair<const char*, E>> valid) {
  std::string list;
  for (const auto& [name, e] : valid) {
    if (v == name) return e;
    list += std::string(list.empty() ? "" : ", ") + name;
  }
  throw Error(std::string("attention: ") + key + " '" + v + "' is not one of " + list);
}

}  // namespace

Attention::Mask Attention::parse_mask(const std::string& mask) {
  return one_of<Mask>("mask", mask, {{"causal", Mask::Causal}, {"prefix", Mask::Prefix}, {"sliding", Mask::Sliding},
                                     {"bidirectional", Mask::Bidirectional}});
}

Attention::Attention(const AttentionConfig& c, ParamStore& ps, const std::string& name) : cfg_(c) {
  const int64_t D = c.d_model, H = c.n_heads;
  SL_CHECK(D % H == 0, "attention: d_model " + std::to_string(D) + " is not divisible by n_heads " + std::to_string(H));
  dh_ = D / H;
  kernel_ = &attention_kernel(c.kernel);
  mask_ = parse_mask(c.mask);
  pos_ = one_of<Pos>("pos", c.pos, {{"rope", Pos::Rope}, {"alibi", Pos::Alibi}, {"relative", Pos::Relative},
                                    {"learned", Pos::Other}, {"sinusoidal", Pos::Other}, {"none", Pos::Other}});
  gate_ = one_of<Gate>("gate", c.gate, {{"none", Gate::None}, {"elementwise", Gate::Elementwise}, {"headwise", Gate::Headwise}});
  SL_CHECK(mask_ != Mask::Sliding || c.window >= 1, "attention: a sliding mask needs window >= 1");
  SL_CHECK(kernel_->id == AttnKernel::Softmax || (!c.off_by_one && !c.sink_logit),
           "attention: off_by_one and sink_logit change the softmax denominator; kernel is '" + c.kernel + "'");
  SL_CHECK(pos_ != Pos::Relative || (c.relative_buckets >= 4 && c.relative_max_distance > c.relative_buckets / 2),
           "attention: relative positions need relative_buckets >= 4 and relative_max_distance > relative_buckets / 2");
  auto w = [&](const std::string& n, Shape s, float std) { return ps.add(name + "." + n, s, Init::normal(std), true); };
  auto b = [&](const std::string& n, Shape s, Init init) { return ps.add(name + "." + n, s, init, false); };
  wq_ = w("wq", {D, D}, c.init_std);
  wk_ = w("wk", {D, D}, c.init_std);
  wv_ = w("wv", {D, D}, c.init_std);
  wo_ = w("wo", {D, D}, c.out_init_std);
  if (c.bias) {
    bq_ = b("bq", {D}, Init::zeros());
    bk_ = b("bk", {D}, Init::zeros());
    bv_ = b("bv", {D}, Init::zeros());
    bo_ = b("bo", {D}, Init::zeros());
  }
  if (c.qk_norm) {
    q_norm_ = b("q_norm", {dh_}, Init::ones());
    k_norm_ = b("k_norm", {dh_}, Init::ones());
  }
  if (c.kv_bias) {
    int64_t nh = c.kv_bias_per_head ? H : 1;
    if (c.kv_bias_key_learnable) kv_key_ = b("k_bias", {nh, dh_}, Init::normal(c.init_std));
    if (c.kv_bias_value_learnable) kv_value_ = b("v_bias", {nh, dh_}, Init::normal(c.init_std));
  }
  if (c.value_bias) value_bias_ = b("value_bias", {c.kv_bias_per_head ? H : 1, dh_}, Init::normal(c.init_std));
  if (c.sink_logit) sink_logit_ = b("sink_logit", {H}, Init::zeros());
  if (gate_ == Gate::Elementwise) wg_ = w("wg", {D, D}, c.init_std);
  if (gate_ == Gate::Headwise) wg_ = w("wg", {H, D}, c.init_std);
  for (const KernelParam& p : kernel_->params)
    kernel_params_.push_back(b(p.name, p.shape(c.mlp_hidden), p.init(c.mlp_hidden)));
  if (pos_ == Pos::Relative) relative_table_ = b("relative_bias", {c.relative_buckets, H}, Init::zeros());
}

std::vector<uint8_t> Attention::make_mask(const AttentionConfig& c, int64_t T, int64_t slots, int64_t past) {
  const int64_t S = slots + past + T;
  const Mask kind = parse_mask(c.mask);
  const bool causal = kind == Mask::Causal, prefix = kind == Mask::Prefix, sliding = kind == Mask::Sliding;
  std::vector<uint8_t> m(T * S, 0);
  for (int64_t i = 0; i < T; ++i)
    for (int64_t j = slots; j < S; ++j) {  // bias slots are visible to every query
      const int64_t p = j - slots, q = past + i;  // the key's and the query's places
      if (causal) m[i * S + j] = p > q;
      if (prefix) m[i * S + j] = p > q && !(p < c.prefix_len && q < c.prefix_len);
      if (sliding) m[i * S + j] = p > q || q - p >= c.window;
    }
  return m;
}

bool Attention::sees_only_past(const AttentionConfig& c) {
  const Mask kind = parse_mask(c.mask);
  return kind == Mask::Causal || kind == Mask::Sliding;
}

// T5's log-spaced buckets of the relative distance n = i - p (query minus key).
static int64_t relative_bucket(int64_t n, bool bidirectional, int64_t buckets, int64_t max_distance) {
  int64_t base = 0;
  if (bidirectional) {
    buckets /= 2;
    if (n < 0) base = buckets;
    n = std::abs(n);
  } else {
    n = std::max<int64_t>(n, 0);
  }
  int64_t exact = buckets / 2;
  if (n < exact) return base + n;
  int64_t v = exact + (int64_t)(std::log((double)n / exact) / std::log((double)max_distance / exact) * (buckets - exact));
  return base + std::min(v, buckets - 1);
}

// b[h, i, j] added to the scores: ALiBi's fixed slopes or T5's learned buckets of the distance
// between query place past + i and key place j - slots; 0 on bias slots.
Tensor Attention::positional_bias(int64_t T, int64_t slots, int64_t past) const {
  const int64_t H = cfg_.n_heads, S = slots + past + T;
  if (pos_ == Pos::Alibi) {
    Tensor bias = Tensor::zeros({H, T, S});
    for (int64_t h = 0; h < H; ++h) {
      float slope = std::pow(2.f, -8.f * (h + 1) / H);
      for (int64_t i = 0; i < T; ++i)
        for (int64_t j = slots; j < S; ++j)
          bias.data()[(h * T + i) * S + j] = -slope * std::abs((float)(past + i - (j - slots)));
    }
    return bias;
  }
  const bool bidirectional = mask_ != Mask::Causal && mask_ != Mask::Sliding;
  std::vector<int32_t> ids(T * S);
  std::vector<uint8_t> is_slot(T * S, 0);
  for (int64_t i = 0; i < T; ++i)
    for (int64_t j = 0; j < S; ++j) {
      ids[i * S + j] = (int32_t)relative_bucket(past + i - (j - slots), bidirectional, cfg_.relative_buckets,
                                                cfg_.relative_max_distance);
      is_slot[i * S + j] = j < slots;
    }
  Tensor bias = embedding(relative_table_, ids).reshape({T, S, H}).permute({2, 0, 1});
  return slots ? masked_fill(bias, is_slot, {T, S}, 0.f) : bias;
}

float Attention::sigmoid_bias(int64_t T) const {
  return std::isnan(cfg_.sigmoid_bias) ? -std::log((float)T) : cfg_.sigmoid_bias;
}

// The fused core (the engine's attention op) covers the kernels with a fused row, without extra
// key slots, extra denominator terms or positional score biases; the composed path covers the rest.
bool Attention::fused() const {
  const auto& c = cfg_;
  return c.fused_core && kernel_->fused_row && !c.off_by_one && !c.sink_logit && !c.kv_bias && pos_ != Pos::Alibi &&
         pos_ != Pos::Relative;
}

Tensor Attention::weights_from_scores(const Tensor& s, int64_t T, int64_t slots, int64_t past) const {
  const auto& c = cfg_;
  const std::vector<uint8_t> mask = make_mask(c, T, slots, past);
  KernelInputs in{mask, {T, slots + past + T}, sigmoid_bias(past + T), Tensor(), kernel_params_};
  if (c.off_by_one || c.sink_logit) {  // the extra denominator term: c = 0 (off-by-one) or a learned per-head logit
    in.extra_logit = Tensor::zeros({s.size(0), s.size(1), T, 1});
    if (c.sink_logit) in.extra_logit = add(in.extra_logit, sink_logit_.reshape({1, c.n_heads, 1, 1}));
  }
  Tensor w = kernel_->composed(s, in);
  if (c.normalize && !kernel_->distribution) w = div(w, sum(w, -1, true));  // A_ij = w_ij / sum_j w_ij
  return w;
}

// probs [B, H, T, S], queries [B, H, T, d_h], keys and values [B, H, S, d_h] cut to the request's block.
static AttentionCapture keep(const CaptureRequest& r, const Tensor& probs, const Tensor& queries, const Tensor& keys,
                             const Tensor& values, int64_t slots) {
  const int64_t n = r.positions < 0 ? probs.size(2) : r.positions;
  return {.probs = leading_block(probs, {r.rows, -1, n, slots + n}),
          .keys = leading_block(keys, {r.rows, -1, slots + n}),
          .values = leading_block(values, {r.rows, -1, slots + n}),
          .slot_offset = slots,
          .queries = leading_block(queries, {r.rows, -1, n})};
}

// The attention core composed from primitive ops, every variant written as its formula. The T
// queries are the last T of the keys.
Tensor Attention::composed_core(Tensor q, Tensor k, Tensor v, const std::optional<CaptureRequest>& capture,
                                const std::optional<AttentionEdit>& edit, AttentionCapture* out) const {
  const auto& c = cfg_;
  const int64_t B = q.size(0), T = q.size(1), past = k.size(1) - T, D = c.d_model, H = c.n_heads;
  using Edit = AttentionEdit::Kind;
  q = q.permute({0, 2, 1, 3});  // [B, H, T, d_h]
  k = k.permute({0, 2, 1, 3});
  v = v.permute({0, 2, 1, 3});

  int64_t slots = 0;
  if (c.kv_bias) {  // k' = [k_b; k], v' = [v_b; v]: one more key every query can attend to
    int64_t nh = c.kv_bias_per_head ? H : 1;
    Tensor zero = Tensor::zeros({B, H, 1, dh_});
    Tensor kb = kv_key_.defined() ? add(zero, kv_key_.reshape({1, nh, 1, dh_})) : zero;
    Tensor vb = kv_value_.defined() ? add(zero, kv_value_.reshape({1, nh, 1, dh_})) : zero;
    k = concat({kb, k}, 2);
    v = concat({vb, v}, 2);
    slots = 1;
  }
  if (edit && (edit->kind == Edit::ZeroSinkValue || edit->kind == Edit::MeanSinkValue))
    v = replace_sink_value(v, edit->head, edit->kind == Edit::MeanSinkValue);

  Tensor s = scale(matmul(q, k.transpose(-1, -2)), 1.f / std::sqrt((float)dh_));
  if (pos_ == Pos::Alibi || pos_ == Pos::Relative) s = add(s, positional_bias(T, slots, past));
  Tensor A = weights_from_scores(s, T, slots, past);
  if (edit && (edit->kind == Edit::DropSinkAttention || edit->kind == Edit::DropSinkAttentionRescaled))
    A = drop_sink_attention(A, edit->head, edit->kind == Edit::DropSinkAttentionRescaled);

  if (capture) *out = keep(*capture, A, q, k, v, slots);
  return matmul(A, v).permute({0, 2, 1, 3}).reshape({B, T, D});
}

AttentionOutput Attention::forward(const Tensor& x, const std::optional<CaptureRequest>& capture,
                                   const std::optional<AttentionEdit>& edit, LayerCache* cache) const {
  const auto& c = cfg_;
  const int64_t B = x.size(0), T = x.size(1), D = c.d_model, H = c.n_heads;
  SL_CHECK(!cache || (sees_only_past(c) && !capture),
           "attention: a KV cache needs a causal or sliding mask (attention.mask is '" + c.mask + "') and no capture");
  Tensor q = linear(x, wq_, bq_).reshape({B, T, H, dh_});
  Tensor k = linear(x, wk_, bk_).reshape({B, T, H, dh_});
  Tensor v = linear(x, wv_, bv_).reshape({B, T, H, dh_});
  if (c.qk_norm) {
    q = rms_norm(q, q_norm_, c.norm_eps);
    k = rms_norm(k, k_norm_, c.norm_eps);
  }
  if (cache) {  // keys join the cache before the rotation: it rotates them by their place at every step
    if (cache->keys.defined()) k = concat({cache->keys, k}, 1), v = concat({cache->values, v}, 1);
    cache->keys = k.detach(), cache->values = v.detach();
  }
  const int64_t past = k.size(1) - T;
  if (pos_ == Pos::Rope) {
    q = rope(q, c.rope_theta, past);
    k = rope(k, c.rope_theta);
  }
  if (kernel_->feature_map) {  // phi(q) . phi(k): the kernel's feature map
    q = kernel_->feature_map(q);
    k = kernel_->feature_map(k);
  }
  AttentionOutput out;
  if (capture) out.capture.emplace();
  Tensor o;
  if (fused() && past == 0 && !(edit && edit->needs_weights())) {
    Tensor probs;  // assembled by the op for the request's block only
    o = attention(q, k, v, make_mask(c, T, 0), kernel_->id, 1.f / std::sqrt((float)dh_), sigmoid_bias(T), c.normalize,
                  capture ? &probs : nullptr, capture ? capture->rows : -1, capture ? capture->positions : -1)
            .reshape({B, T, D});
    auto heads_first = [](const Tensor& x) { return x.permute({0, 2, 1, 3}); };
    if (capture) *out.capture = keep(*capture, probs, heads_first(q), heads_first(k), heads_first(v), 0);
  } else {
    o = composed_core(q, k, v, capture, edit, capture ? &*out.capture : nullptr);
  }
  if (capture) {  // a kernel whose weights can be negative has no distribution, even normalised
    AttentionCapture& a = *out.capture;
    a.normalized = kernel_->distribution || (c.normalize && kernel_->nonnegative);
    a.mask = make_mask(c, a.probs.size(2), a.slot_offset);  // a query's visible keys do not depend on T
    a.out_proj = wo_.detach().reshape({D, H, dh_}).permute({1, 2, 0}).clone();  // y = o W_O^T
  }

  if (c.value_bias)  // weights that sum to one make this a bias on every value, an outlet for none of them
    o = add(o.reshape({B, T, H, dh_}), value_bias_.reshape({1, 1, value_bias_.size(0), dh_})).reshape({B, T, D});
  if (gate_ == Gate::Elementwise) o = mul(o, sigmoid(linear(x, wg_)));  // o * sigma(x W_g)
  if (gate_ == Gate::Headwise)
    o = mul(o.reshape({B, T, H, dh_}), sigmoid(linear(x, wg_)).reshape({B, T, H, 1})).reshape({B, T, D});
  if (edit && edit->kind == AttentionEdit::Kind::ZeroHead)
    o = zero_head(o.reshape({B, T, H, dh_}), edit->head).reshape({B, T, D});

  out.y = linear(o, wo_, bo_);
  if (capture) out.capture->output = leading_block(out.y, {capture->rows, capture->positions});
  return out;
}

}  // namespace sl::models
