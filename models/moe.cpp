#include "models/moe.h"

#include <algorithm>
#include <cmath>

namespace sl::models {

MoE::MoE(const MoEConfig& c, ParamStore& ps, const std::string& name) : cfg_(c) {
  SL_CHECK(c.router == "softmax" || c.router == "sigmoid", "moe: unknown router '" + c.router + "' (valid: softmax, sigmoid)");
  SL_CHECK(c.experts >= 1 && c.top_k >= 1 && c.top_k <= c.experts,
           "moe: top_k (" + std::to_string(c.top_k) + ") must lie in [1, experts = " + std::to_string(c.experts) + "]");
  SL_CHECK(c.capacity_factor >= 0, "moe: capacity_factor must be >= 0 (0 = no dropping)");
  router_ = ps.add(name + ".router", {c.experts, c.expert.d_model}, Init::normal(c.expert.init_std), true);
  for (int64_t e = 0; e < c.experts; ++e) experts_.emplace_back(c.expert, ps, name + ".experts." + std::to_string(e));
  for (int64_t s = 0; s < c.shared_experts; ++s) shared_.emplace_back(c.expert, ps, name + ".shared." + std::to_string(s));
}

MoEOutput MoE::forward(const Tensor& x_in, MoECapture* cap) const {
  const MoEConfig& c = cfg_;
  const int64_t D = c.expert.d_model, E = c.experts, k = c.top_k;
  SL_CHECK(x_in.dim() >= 1 && x_in.size(-1) == D, "moe: x must be [..., " + std::to_string(D) + "], got " + shape_str(x_in.shape()));
  const int64_t N = x_in.numel() / D;
  Tensor x = x_in.reshape({N, D});

  Tensor z = linear(x, router_);                                    // [N, E]
  Tensor p = c.router == "softmax" ? softmax(z) : sigmoid(z);
  TopK top = topk(p, k);
  Tensor g = c.renormalize ? div(top.values, sum(top.values, 1, true)) : top.values;  // [N, k]

  // Assignment a = n * k + j sends token n to expert top.indices[a]. Per expert, in priority
  // order: all first choices (earlier tokens first), then second choices, ...
  std::vector<std::vector<int32_t>> assigned(E);
  for (int64_t j = 0; j < k; ++j)
    for (int64_t n = 0; n < N; ++n) assigned[top.indices[n * k + j]].push_back((int32_t)(n * k + j));
  std::vector<float> share(E);  // f_e, before any dropping
  for (int64_t e = 0; e < E; ++e) share[e] = (float)assigned[e].size() / (float)(N * k);
  std::vector<uint8_t> kept(N * k, 1);
  if (c.capacity_factor > 0) {
    const size_t capacity = (size_t)std::ceil(c.capacity_factor * (double)(N * k) / E);
    for (auto& a : assigned) {
      for (size_t i = capacity; i < a.size(); ++i) kept[a[i]] = 0;
      if (a.size() > capacity) a.resize(capacity);
    }
  }

  // oneDNN primitives are cached per shape, and an expert's row count changes every step; it
  // is rounded up to a multiple of kRowBucket with padding rows (token 0 with a zero gate, the
  // extra last entry of `gates`) that add nothing to y and receive no gradient.
  constexpr size_t kRowBucket = 32;
  Tensor gates = concat({g.reshape({N * k, 1}), Tensor::zeros({1, 1})}, 0);
  std::vector<Tensor> outs;
  std::vector<int32_t> dest;  // the token each row of concat(outs) belongs to
  std::vector<float> output_norm(cap ? N * k : 0, 0.f);
  for (int64_t e = 0; e < E; ++e) {
    if (assigned[e].empty()) continue;
    const size_t real = assigned[e].size(), padded = (real + kRowBucket - 1) / kRowBucket * kRowBucket;
    std::vector<int32_t> slots = assigned[e], tokens(padded, 0);
    slots.resize(padded, (int32_t)(N * k));
    for (size_t i = 0; i < real; ++i) tokens[i] = slots[i] / (int32_t)k;
    Tensor ye = experts_[e].forward(gather_rows(x, tokens));      // FFN_e on its tokens only
    if (cap) {
      const float* d = ye.data();
      for (size_t i = 0; i < real; ++i) {
        double s = 0;
        for (int64_t j = 0; j < D; ++j) s += (double)d[i * D + j] * d[i * D + j];
        output_norm[slots[i]] = (float)std::sqrt(s);
      }
    }
    outs.push_back(mul(ye, gather_rows(gates, slots)));           // g_j FFN_{e_j}(x)
    dest.insert(dest.end(), tokens.begin(), tokens.end());
  }
  Tensor y = outs.empty() ? Tensor::zeros({N, D}) : scatter_add_rows(concat(outs, 0), dest, N);
  for (const FFN& s : shared_) y = add(y, s.forward(x));

  Tensor q = c.router == "softmax" ? p : div(p, sum(p, 1, true));  // scores as a distribution over experts
  Tensor aux = scale(sum(mul(mean(q, 0), Tensor::from({E}, share))), (float)E);
  Tensor lse = sub(slice(z, 1, 0, 1), slice(log_softmax(z), 1, 0, 1));  // logsumexp(z) = z_0 - log_softmax(z)_0
  Tensor zl = mean(square(lse));

  if (cap) {
    cap->tokens = N, cap->experts = E, cap->top_k = k;
    cap->choice = top.indices;
    cap->kept = kept;
    cap->scores = q.contiguous().to_vector();
    cap->output_norm = output_norm;
    cap->aux_loss = aux.item();
    cap->z_loss = zl.item();
  }
  return {y.reshape(x_in.shape()), aux, zl};
}

}  // namespace sl::models
