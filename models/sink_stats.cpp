#include "models/sink_stats.h"

#include <algorithm>
#include <cmath>

#include "engine/threads.h"

namespace sl::models {

std::vector<float> importance(const Tensor& probs, int64_t slots, int64_t k) {
  Tensor A = probs.contiguous();
  const int64_t B = A.size(0), H = A.size(1), T = A.size(2), S = A.size(3);
  k = std::min(k, T);
  std::vector<float> alpha(B * H * k, 0.f);
#pragma omp parallel for if (B * H * k * T > kParallelMin)
  for (int64_t bh = 0; bh < B * H; ++bh) {
    const float* a = A.data() + bh * T * S;
    for (int64_t p = 0; p < k; ++p) {
      double s = 0;
      for (int64_t i = p; i < T; ++i) s += a[i * S + slots + p];
      alpha[bh * k + p] = (float)(s / (T - p));
    }
  }
  return alpha;
}

static float norm_of(const float* x, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += (double)x[i] * x[i];
  return (float)std::sqrt(s);
}

SinkStats compute_sink_stats(const std::vector<AttentionCapture>& attn, const std::vector<Tensor>& hidden,
                             const SinkStatsOptions& opt) {
  SinkStats st;
  st.layers = (int64_t)attn.size();
  if (!st.layers) return st;
  const Tensor& p0 = attn[0].probs;
  const int64_t B = p0.size(0), H = p0.size(1), T = p0.size(2);
  const int64_t L = st.layers, K = std::min(opt.first_k, T), E = (int64_t)opt.eps.size();
  st.heads = H;
  st.k = K;
  st.slots = attn[0].slot_offset;
  st.alpha.assign(L * H * K, 0.f);
  st.slot_alpha.assign(st.slots ? L * H : 0, 0.f);
  st.sink_rate_k.assign(E * K, 0.f);
  st.entropy.assign(L * H, 0.f);
  st.row_sum.assign(L * H, 0.f);
  st.attn_max.assign(L, 0.f);
  st.attn_mean.assign(L, 0.f);
  st.key_norm.assign(L * K, 0.f);
  st.value_norm.assign(L * K, 0.f);

  for (int64_t l = 0; l < L; ++l) {
    Tensor A = attn[l].probs.contiguous();
    const int64_t S = A.size(3), slots = attn[l].slot_offset;
    std::vector<float> alpha = importance(A, slots, K);
    for (int64_t b = 0; b < B; ++b)
      for (int64_t h = 0; h < H; ++h)
        for (int64_t p = 0; p < K; ++p) {
          float a = alpha[(b * H + h) * K + p];
          st.alpha[(l * H + h) * K + p] += a / B;
          for (int64_t e = 0; e < E; ++e) st.sink_rate_k[e * K + p] += a > opt.eps[e] ? 100.f / (L * H * B) : 0.f;
        }
    // Per (sequence, head) sums on all threads, then added in a fixed order: the same result
    // for any thread count.
    std::vector<double> ent(B * H, 0), rsum(B * H, 0), slot(B * H, 0), top(B * H, 0);
#pragma omp parallel for if (B * H * T * S > kParallelMin)
    for (int64_t bh = 0; bh < B * H; ++bh) {
      double ent_bh = 0, rsum_bh = 0, slot_bh = 0, top_bh = 0;  // locals: no shared cache lines in the loop
      for (int64_t i = 0; i < T; ++i) {
        const float* row = A.data() + (bh * T + i) * S;
        double rs = 0, e = 0;
        for (int64_t j = 0; j < S; ++j) {
          rs += row[j];
          top_bh = std::max(top_bh, (double)row[j]);
        }
        for (int64_t j = 0; j < S && rs > 0; ++j) {
          double q = row[j] / rs;
          if (q > 0) e -= q * std::log(q);
        }
        for (int64_t j = 0; j < slots; ++j) slot_bh += row[j];
        ent_bh += e;
        rsum_bh += rs;
      }
      ent[bh] = ent_bh, rsum[bh] = rsum_bh, slot[bh] = slot_bh, top[bh] = top_bh;
    }
    double mx = 0, total = 0;
    for (int64_t bh = 0; bh < B * H; ++bh) {
      const int64_t h = bh % H;
      if (slots) st.slot_alpha[l * H + h] += (float)(slot[bh] / (B * T));
      st.entropy[l * H + h] += (float)(ent[bh] / (B * T));
      st.row_sum[l * H + h] += (float)(rsum[bh] / (B * T));
      mx = std::max(mx, top[bh]);
      total += rsum[bh];
    }
    st.attn_max[l] = (float)mx;
    st.attn_mean[l] = (float)(total / ((double)B * H * T * S));

    for (auto [src, dst] : {std::pair{&attn[l].keys, &st.key_norm}, std::pair{&attn[l].values, &st.value_norm}}) {
      if (!src->defined()) continue;
      Tensor x = src->contiguous();  // [B, H, S, d_h]
      const int64_t dh = x.size(3);
      for (int64_t bh = 0; bh < B * H; ++bh)
        for (int64_t p = 0; p < K; ++p)
          (*dst)[l * K + p] += norm_of(x.data() + (bh * S + slots + p) * dh, dh) / (B * H);
    }
  }
  st.sink_rate.resize(E);
  for (int64_t e = 0; e < E; ++e) st.sink_rate[e] = st.sink_rate_k[e * K];

  if (!hidden.empty()) {
    st.hidden_norm.assign(L * K, 0.f);
    st.massive_ratio.assign(L, 0.f);
    for (int64_t l = 0; l < L; ++l) {
      Tensor h = hidden[l].contiguous();
      const int64_t Th = h.size(1), D = h.size(2);
      std::vector<float> row_norm(B * Th);
#pragma omp parallel for if (B * Th * D > kParallelMin)
      for (int64_t r = 0; r < B * Th; ++r) row_norm[r] = norm_of(h.data() + r * D, D);
      std::vector<float> norms(Th, 0.f);  // mean over sequences, per position
      for (int64_t b = 0; b < B; ++b)
        for (int64_t t = 0; t < Th; ++t) norms[t] += row_norm[b * Th + t] / B;
      for (int64_t p = 0; p < std::min(K, Th); ++p) st.hidden_norm[l * K + p] = norms[p];
      std::vector<float> sorted = norms;
      std::nth_element(sorted.begin(), sorted.begin() + Th / 2, sorted.end());
      st.massive_ratio[l] = norms[0] / std::max(sorted[Th / 2], 1e-12f);
    }
  }
  return st;
}

}  // namespace sl::models
