#include "models/attention.h"

#include <cmath>
#include <limits>

namespace sl::models {

Attention::Attention(const AttentionConfig& c, ParamStore& ps, const std::string& name) : cfg_(c) {
  const int64_t D = c.d_model, H = c.n_heads;
  SL_CHECK(D % H == 0, "attention: d_model " + std::to_string(D) + " is not divisible by n_heads " + std::to_string(H));
  dh_ = D / H;
  auto one_of = [](const std::string& key, const std::string& v, std::initializer_list<const char*> valid) {
    std::string list;
    for (const char* x : valid) {
      if (v == x) return;
      list += std::string(list.empty() ? "" : ", ") + x;
    }
    throw Error("attention: " + key + " '" + v + "' is not one of " + list);
  };
  one_of("kernel", c.kernel, {"softmax", "sigmoid", "elu_plus_one", "linear", "mlp", "relu"});
  one_of("mask", c.mask, {"causal", "prefix", "sliding", "bidirectional"});
  one_of("gate", c.gate, {"none", "elementwise", "headwise"});
  one_of("pos", c.pos, {"rope", "alibi", "relative", "learned", "sinusoidal", "none"});
  SL_CHECK(c.mask != "sliding" || c.window >= 1, "attention: a sliding mask needs window >= 1");
  SL_CHECK(c.kernel == "softmax" || (!c.off_by_one && !c.sink_logit),
           "attention: off_by_one and sink_logit change the softmax denominator; kernel is '" + c.kernel + "'");
  SL_CHECK(c.pos != "relative" || (c.relative_buckets >= 4 && c.relative_max_distance > c.relative_buckets / 2),
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
  if (c.sink_logit) sink_logit_ = b("sink_logit", {H}, Init::zeros());
  if (c.gate == "elementwise") wg_ = w("wg", {D, D}, c.init_std);
  if (c.gate == "headwise") wg_ = w("wg", {H, D}, c.init_std);
  if (c.kernel == "mlp") {
    mlp_w1_ = b("mlp_w1", {c.mlp_hidden, 1}, Init::normal(1.f));
    mlp_b1_ = b("mlp_b1", {c.mlp_hidden}, Init::zeros());
    mlp_w2_ = b("mlp_w2", {1, c.mlp_hidden}, Init::normal(1.f / std::sqrt((float)c.mlp_hidden)));
    mlp_b2_ = b("mlp_b2", {1}, Init::zeros());
  }
  if (c.pos == "relative") relative_table_ = b("relative_bias", {c.relative_buckets, H}, Init::zeros());
}

std::vector<uint8_t> Attention::make_mask(const AttentionConfig& c, int64_t T, int64_t slots) {
  const int64_t S = slots + T;
  const bool causal = c.mask == "causal", prefix = c.mask == "prefix", sliding = c.mask == "sliding";
  std::vector<uint8_t> m(T * S, 0);
  for (int64_t i = 0; i < T; ++i)
    for (int64_t j = slots; j < S; ++j) {  // bias slots are visible to every query
      int64_t p = j - slots;
      if (causal) m[i * S + j] = p > i;
      if (prefix) m[i * S + j] = p > i && !(p < c.prefix_len && i < c.prefix_len);
      if (sliding) m[i * S + j] = p > i || i - p >= c.window;
    }
  return m;
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

// b[h, i, j] added to the scores: ALiBi's fixed slopes or T5's learned buckets; 0 on bias slots.
Tensor Attention::positional_bias(int64_t T, int64_t slots) const {
  const int64_t H = cfg_.n_heads, S = slots + T;
  if (cfg_.pos == "alibi") {
    Tensor bias = Tensor::zeros({H, T, S});
    for (int64_t h = 0; h < H; ++h) {
      float slope = std::pow(2.f, -8.f * (h + 1) / H);
      for (int64_t i = 0; i < T; ++i)
        for (int64_t j = slots; j < S; ++j) bias.data()[(h * T + i) * S + j] = -slope * std::abs((float)(i - (j - slots)));
    }
    return bias;
  }
  bool bidirectional = cfg_.mask != "causal" && cfg_.mask != "sliding";
  std::vector<int32_t> ids(T * S);
  std::vector<uint8_t> is_slot(T * S, 0);
  for (int64_t i = 0; i < T; ++i)
    for (int64_t j = 0; j < S; ++j) {
      ids[i * S + j] = (int32_t)relative_bucket(i - (j - slots), bidirectional, cfg_.relative_buckets,
                                                cfg_.relative_max_distance);
      is_slot[i * S + j] = j < slots;
    }
  Tensor bias = embedding(relative_table_, ids).reshape({T, S, H}).permute({2, 0, 1});
  return slots ? masked_fill(bias, is_slot, {T, S}, 0.f) : bias;
}

float Attention::sigmoid_bias(int64_t T) const {
  return std::isnan(cfg_.sigmoid_bias) ? -std::log((float)T) : cfg_.sigmoid_bias;
}

// The fused core (the engine's attention op) covers the kernels without extra key slots,
// extra denominator terms or positional score biases; the composed path covers the rest.
bool Attention::fused() const {
  const auto& c = cfg_;
  return c.fused_core && (c.kernel == "softmax" || c.kernel == "sigmoid" || c.kernel == "relu") && !c.off_by_one && !c.sink_logit &&
         !c.kv_bias && c.pos != "alibi" && c.pos != "relative";
}

Tensor Attention::weights_from_scores(const Tensor& s, int64_t T, int64_t slots) const {
  const auto& c = cfg_;
  const Shape mshape{T, slots + T};
  const std::vector<uint8_t> mask = make_mask(c, T, slots);

  if (c.kernel == "softmax") {
    Tensor z = masked_fill(s, mask, mshape, -std::numeric_limits<float>::infinity());
    if (!c.off_by_one && !c.sink_logit) return softmax(z);
    // A_ij = exp(s_ij) / (exp(c) + sum_j exp(s_ij)): c = 0 (off-by-one) or a learned per-head
    // logit. The extra column takes probability mass but has no value vector.
    Shape col{s.size(0), s.size(1), T, 1};
    Tensor extra = Tensor::zeros(col);
    if (c.sink_logit) extra = add(extra, sink_logit_.reshape({1, c.n_heads, 1, 1}));
    return slice(softmax(concat({z, extra}, -1)), -1, 0, slots + T);
  }

  Tensor w;
  if (c.kernel == "sigmoid") {  // sigma(s + b), b = -log T by default
    w = sigmoid(add_scalar(s, sigmoid_bias(T)));
  } else if (c.kernel == "relu") {
    w = relu(s);
  } else if (c.kernel == "linear" || c.kernel == "elu_plus_one") {  // phi already applied to q, k
    w = s;
  } else if (c.kernel == "mlp") {  // a learned scalar function of each score
    Tensor h = gelu(linear(s.reshape({-1, 1}), mlp_w1_, mlp_b1_));
    w = linear(h, mlp_w2_, mlp_b2_).reshape(s.shape());
  } else {
    throw Error("attention: unknown kernel '" + c.kernel + "'");
  }
  w = masked_fill(w, mask, mshape, 0.f);
  if (c.normalize) w = div(w, sum(w, -1, true));  // A_ij = w_ij / sum_j w_ij
  return w;
}

Tensor leading_block(const Tensor& x, const std::vector<int64_t>& extents) {
  Tensor y = x.detach();
  bool cut = false;
  for (size_t d = 0; d < extents.size(); ++d)
    if (extents[d] >= 0 && extents[d] < y.size((int64_t)d)) y = slice(y, (int64_t)d, 0, extents[d]), cut = true;
  return cut ? y.clone() : y;
}

// probs [B, H, T, S], keys and values [B, H, S, d_h] into the capture, cut to its block.
static void keep(AttentionCapture& c, const Tensor& probs, const Tensor& keys, const Tensor& values, int64_t slots) {
  const int64_t n = c.positions < 0 ? probs.size(2) : c.positions;
  c.probs = leading_block(probs, {c.rows, -1, n, slots + n});
  c.keys = leading_block(keys, {c.rows, -1, slots + n});
  c.values = leading_block(values, {c.rows, -1, slots + n});
  c.slot_offset = slots;
}

// The attention core composed from primitive ops, every variant written as its formula.
Tensor Attention::composed_core(Tensor q, Tensor k, Tensor v, AttentionCapture* capture) const {
  const auto& c = cfg_;
  const int64_t B = q.size(0), T = q.size(1), D = c.d_model, H = c.n_heads;
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

  Tensor s = scale(matmul(q, k.transpose(-1, -2)), 1.f / std::sqrt((float)dh_));
  if (c.pos == "alibi" || c.pos == "relative") s = add(s, positional_bias(T, slots));
  Tensor A = weights_from_scores(s, T, slots);

  if (capture) keep(*capture, A, k, v, slots);
  return matmul(A, v).permute({0, 2, 1, 3}).reshape({B, T, D});
}

Tensor Attention::forward(const Tensor& x, AttentionCapture* capture) const {
  const auto& c = cfg_;
  const int64_t B = x.size(0), T = x.size(1), D = c.d_model, H = c.n_heads;
  Tensor q = linear(x, wq_, bq_).reshape({B, T, H, dh_});
  Tensor k = linear(x, wk_, bk_).reshape({B, T, H, dh_});
  Tensor v = linear(x, wv_, bv_).reshape({B, T, H, dh_});
  if (c.qk_norm) {
    q = rms_norm(q, q_norm_, c.norm_eps);
    k = rms_norm(k, k_norm_, c.norm_eps);
  }
  if (c.pos == "rope") {
    q = rope(q, c.rope_theta);
    k = rope(k, c.rope_theta);
  }
  if (c.kernel == "elu_plus_one") {  // phi(x) = ELU(x) + 1 keeps every weight positive
    q = add_scalar(elu(q), 1.f);
    k = add_scalar(elu(k), 1.f);
  }
  Tensor o;
  if (fused()) {
    AttnKernel kernel = c.kernel == "softmax" ? AttnKernel::Softmax
                        : c.kernel == "sigmoid" ? AttnKernel::Sigmoid
                                                : AttnKernel::Relu;
    Tensor probs;
    o = attention(q, k, v, make_mask(c, T, 0), kernel, 1.f / std::sqrt((float)dh_), sigmoid_bias(T), c.normalize,
                  capture ? &probs : nullptr, capture ? capture->rows : -1, capture ? capture->positions : -1)
            .reshape({B, T, D});
    if (capture) keep(*capture, probs, k.permute({0, 2, 1, 3}), v.permute({0, 2, 1, 3}), 0);
  } else {
    o = composed_core(q, k, v, capture);
  }
  // Linear and mlp weights can be negative: even normalised, their rows are no distribution.
  if (capture)
    capture->normalized = c.kernel == "softmax" || (c.normalize && c.kernel != "linear" && c.kernel != "mlp");

  if (c.gate == "elementwise") o = mul(o, sigmoid(linear(x, wg_)));  // o * sigma(x W_g)
  if (c.gate == "headwise")
    o = mul(o.reshape({B, T, H, dh_}), sigmoid(linear(x, wg_)).reshape({B, T, H, 1})).reshape({B, T, D});

  return linear(o, wo_, bo_);
}

}  // namespace sl::models
