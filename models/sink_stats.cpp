#include "models/sink_stats.h"

#include <algorithm>
#include <cmath>

#include "engine/ops.h"
#include "engine/row_math.h"
#include "engine/threads.h"

namespace sl::models {

namespace {

// Per (sequence, head) [B * H]: the mean over the T query rows i of what add(acc, row, i) adds to acc.
template <class F>
std::vector<double> row_mean(const Tensor& probs, F add) {
  Tensor A = probs.contiguous();
  const int64_t B = A.size(0), H = A.size(1), T = A.size(2), S = A.size(3);
  std::vector<double> out(B * H, 0);
  for (int64_t bh = 0; bh < B * H; ++bh) {
    for (int64_t i = 0; i < T; ++i) add(out[bh], A.data() + (bh * T + i) * S, i);
    out[bh] /= T;
  }
  return out;
}

// The d-vectors of a [B, H, S, d] view, read in place where d is dense: the captures are views of
// a projection's [B, S, H, d] output, which a loop over positions and then heads reads in order.
class HeadRows {
 public:
  explicit HeadRows(const Tensor& x) : x_(x.strides()[3] == 1 ? x : x.contiguous()) {}
  const float* operator()(int64_t b, int64_t h, int64_t j) const {
    const Shape& st = x_.strides();
    return x_.data() + b * st[0] + h * st[1] + j * st[2];
  }

 private:
  Tensor x_;
};

// The keys each of the T queries sees under mask [T, S] (1 = hidden).
std::vector<int64_t> visible_keys(const std::vector<uint8_t>& mask, int64_t T) {
  const int64_t S = T ? (int64_t)mask.size() / T : 0;
  std::vector<int64_t> n(T);
  for (int64_t i = 0; i < T; ++i) n[i] = std::count(mask.begin() + i * S, mask.begin() + (i + 1) * S, uint8_t{0});
  return n;
}

}  // namespace

std::vector<float> importance(const Tensor& probs, int64_t slots, int64_t k) {
  Tensor A = probs.contiguous();
  const int64_t B = A.size(0), H = A.size(1), T = A.size(2), S = A.size(3);
  k = std::min(k, T);
  std::vector<float> alpha(B * H * k, 0.f);
#pragma omp parallel for if (B * H * k * T > kParallelMin)
  for (int64_t bh = 0; bh < B * H; ++bh) {
    const float* a = A.data() + bh * T * S + slots;
    std::vector<double> sum(k, 0.0);  // key p's column from query p down, a row at a time
    double* s = sum.data();
    for (int64_t i = 0; i < T; ++i) {
      const int64_t visible = std::min(k, i + 1);
#pragma omp simd
      for (int64_t p = 0; p < visible; ++p) s[p] += a[i * S + p];
    }
    for (int64_t p = 0; p < k; ++p) alpha[bh * k + p] = (float)(s[p] / (T - p));
  }
  return alpha;
}

std::vector<float> importance_all_queries(const Tensor& probs, int64_t slots) {
  Tensor A = probs.contiguous();
  const int64_t B = A.size(0), H = A.size(1), T = A.size(2), S = A.size(3), N = S - slots;
  std::vector<float> alpha(B * H * N, 0.f);
  for (int64_t bh = 0; bh < B * H; ++bh) {
    const float* a = A.data() + bh * T * S;
    for (int64_t i = 0; i < T; ++i)
      for (int64_t j = 0; j < N; ++j) alpha[bh * N + j] += a[i * S + slots + j] / T;
  }
  return alpha;
}

Tensor proxy_weights(const Tensor& probs) {
  Tensor A = probs.contiguous();
  const int64_t S = A.size(-1), rows = A.numel() / S;
  Tensor P = Tensor::empty(A.shape());
#pragma omp parallel for if (A.numel() > kParallelMin)
  for (int64_t r = 0; r < rows; ++r) {
    const float* w = A.data() + r * S;
    float* p = P.data() + r * S;
    double total = 0;
    for (int64_t j = 0; j < S; ++j) total += std::fabs(w[j]);
    for (int64_t j = 0; j < S; ++j) p[j] = total > 0 ? (float)(std::fabs(w[j]) / total) : 0.f;
  }
  return P;
}

std::vector<double> slot_importance(const Tensor& probs, int64_t n) {
  return row_mean(probs, [n](double& acc, const float* row, int64_t) {
    for (int64_t j = 0; j < n; ++j) acc += row[j];
  });
}

RowSums row_sums(const Tensor& probs, int64_t slots, const std::vector<uint8_t>& mask) {
  Tensor A = probs.contiguous();
  const int64_t B = A.size(0), H = A.size(1), T = A.size(2), S = A.size(3);
  SL_CHECK(mask.empty() || (int64_t)mask.size() == T * S, "row_sums: a mask of " + std::to_string(mask.size()) +
                                                             " entries for " + std::to_string(T) + " x " +
                                                             std::to_string(S) + " weights");
  // One past a row's last visible key, rounded up to whole vectors of 16: a loop's scalar
  // remainder would cost more than the zeros it skips.
  std::vector<int64_t> end(T, S);
  for (int64_t i = 0; i < T && !mask.empty(); ++i) {
    while (end[i] > 0 && mask[i * S + end[i] - 1]) --end[i];
    end[i] = std::min(S, (end[i] + 15) / 16 * 16);
  }
  RowSums r{std::vector<double>(B * H),     std::vector<double>(B * H),     std::vector<double>(B * H),
            std::vector<double>(B * H),     std::vector<double>(B * H * T), std::vector<double>(B * H * T)};
#pragma omp parallel for if (B * H * T * S > kParallelMin)
  for (int64_t bh = 0; bh < B * H; ++bh) {
    double ent = 0, rsum = 0, slot = 0, top = 0;  // locals: no shared cache lines in the loop
    for (int64_t i = 0; i < T; ++i) {
      const float* row = A.data() + (bh * T + i) * S;
      // The entropy of q = p / rs over the positive p, from one pass of sums:
      // -sum q ln q = (ln rs * sum p - sum p ln p) / rs. Float sums over one row (a few hundred
      // terms at most) keep 16 lanes a vector; p ln p overflows only where p is within 100x of
      // float's largest value, past which the weights themselves are no longer finite.
      float rs = 0, positive = 0, p_ln_p = 0;
      float row_top = 0;
#pragma omp simd reduction(+ : rs, positive, p_ln_p) reduction(max : row_top)
      for (int64_t j = 0; j < end[i]; ++j) {
        const float p = row[j], q = p > 0 ? p : 1.f;  // 1 ln 1 = 0; a select, not a branch, so it vectorises
        rs += p;
        row_top = p > row_top ? p : row_top;
        positive += p > 0 ? p : 0.f;
        p_ln_p += q * log_approx(q);
      }
      top = std::max(top, (double)row_top);
      // ln rs by log_approx too: a library call per row cost more than the row's vector loop.
      // (an infinite weight makes this NaN, which the trainer's finite check of the row reports)
      const double e = rs > 0 ? ((double)log_approx(rs) * positive - p_ln_p) / rs : 0.0;
      slot += row_sum(row, slots);
      r.row_entropy[bh * T + i] = e, r.row_total[bh * T + i] = rs;
      ent += e;
      rsum += rs;
    }
    r.entropy[bh] = ent, r.row_sum[bh] = rsum, r.slot[bh] = slot, r.max[bh] = top;
  }
  return r;
}

std::vector<double> normalized_entropy(const RowSums& r, const std::vector<uint8_t>& mask, int64_t T) {
  const int64_t BH = (int64_t)r.entropy.size(), S = T ? (int64_t)mask.size() / T : 0;
  SL_CHECK((int64_t)r.row_entropy.size() == BH * T && (int64_t)mask.size() == T * S,
           "normalized_entropy: a mask of " + std::to_string(mask.size()) + " entries for " +
               std::to_string(r.row_entropy.size()) + " rows of " + std::to_string(T) + " queries");
  std::vector<double> log_visible(T);
  const std::vector<int64_t> visible = visible_keys(mask, T);
  for (int64_t i = 0; i < T; ++i) log_visible[i] = std::log((double)visible[i]);
  std::vector<double> out(BH);
  for (int64_t bh = 0; bh < BH; ++bh) {
    double total = 0;
    int64_t rows = 0;
    for (int64_t i = 0; i < T; ++i) {
      // one visible key (or none), or no weight: no distribution to measure
      if (log_visible[i] <= 0 || r.row_total[bh * T + i] <= 0) continue;
      total += r.row_entropy[bh * T + i] / log_visible[i];
      ++rows;
    }
    out[bh] = rows ? total / rows : NAN;
  }
  return out;
}

std::vector<double> diagonal_mass(const Tensor& probs, int64_t slots) {
  return row_mean(probs, [slots](double& acc, const float* row, int64_t i) { acc += row[slots + i]; });
}

std::vector<float> value_output_norms(const Tensor& values, const Tensor& out_proj) {
  const int64_t B = values.size(0), H = values.size(1), S = values.size(2), dh = values.size(3);
  SL_CHECK(out_proj.dim() == 3 && out_proj.size(0) == H && out_proj.size(1) == dh,
           "value_output_norms: W_O^h must be [H, d_h, D] for values [B, H, S, d_h]");
  // ||v W||^2 = v (W W^T) . v: through each head's d_h x d_h Gram matrix, d_h / D of the work of
  // projecting the values.
  NoGrad measuring;  // captures are views of the training forward's tensors: record no graph
  const Tensor per_head = values.permute({1, 0, 2, 3}).contiguous().reshape({H, B * S, dh});
  const Tensor vg = matmul(per_head, matmul(out_proj, out_proj.transpose(-1, -2)));  // [H, B * S, d_h]
  std::vector<float> out(B * H * S);
  for (int64_t h = 0; h < H; ++h)
    for (int64_t b = 0; b < B; ++b)
      for (int64_t j = 0; j < S; ++j) {
        const int64_t r = (h * B + b) * S + j;
        const double n2 = row_dot(vg.data() + r * dh, per_head.data() + r * dh, dh);
        out[(b * H + h) * S + j] = (float)std::sqrt(std::max(n2, 0.0));  // rounding may leave n2 a hair below 0
      }
  return out;
}

Contributions output_contributions(const Tensor& probs, const std::vector<float>& value_norms, int64_t column) {
  Tensor A = probs.contiguous();
  const int64_t B = A.size(0), H = A.size(1), T = A.size(2), S = A.size(3);
  SL_CHECK((int64_t)value_norms.size() == B * H * S, "output_contributions: one value norm per key column");
  Contributions c{std::vector<double>(B * H), std::vector<double>(B * H), std::vector<double>(B * H)};
  for (int64_t bh = 0; bh < B * H; ++bh) {
    const float* n = value_norms.data() + bh * S;
    double sink = 0, total = 0, share = 0;
    for (int64_t i = 0; i < T; ++i) {
      const float* row = A.data() + (bh * T + i) * S;
      float all = 0;  // a float sum over one row: twice the lanes a vector of doubles holds
#pragma omp simd reduction(+ : all)
      for (int64_t j = 0; j < S; ++j) all += std::fabs(row[j]) * n[j];
      const double mine = (double)std::fabs(row[column]) * n[column];
      sink += mine, total += all, share += all > 0 ? mine / all : 0;
    }
    c.sink[bh] = sink / T, c.total[bh] = total / T, c.share[bh] = share / T;
  }
  return c;
}

std::vector<double> centred_logit(const Tensor& queries, const Tensor& keys, const std::vector<uint8_t>& mask,
                                  int64_t column) {
  const int64_t B = queries.size(0), H = queries.size(1), T = queries.size(2), dh = queries.size(3), S = keys.size(2);
  SL_CHECK((int64_t)mask.size() == T * S, "centred_logit: a mask of " + std::to_string(mask.size()) + " entries for " +
                                              std::to_string(T) + " queries x " + std::to_string(S) + " keys");
  // s_t,column - mean_j s_tj = q_t . (k_column - mean_j k_j) / sqrt(d_h): a row's visible keys are a
  // few runs of columns (slots, then a causal, prefix or sliding range), summed from prefix sums of
  // the keys instead of scoring every pair.
  std::vector<std::vector<std::pair<int64_t, int64_t>>> runs(T);  // [first, end) of each visible run
  for (int64_t i = 0; i < T; ++i)
    for (int64_t j = 0; j < S; ++j)
      if (!mask[i * S + j] && (j == 0 || mask[i * S + j - 1])) runs[i].push_back({j, j + 1});
      else if (!mask[i * S + j]) runs[i].back().second = j + 1;
  const std::vector<int64_t> visible = visible_keys(mask, T);
  const HeadRows q(queries), k(keys);
  const double inv_sqrt = 1 / std::sqrt((double)dh);
  int64_t rows = 0;  // the queries t >= 1 that see the column, alike for every (sequence, head)
  for (int64_t i = 1; i < T; ++i) rows += !mask[i * S + column];
  std::vector<double> total(B * H, 0.0);
  // prefix[h][j] = the sum of head h's keys before j, in float (a sum over one sequence's keys;
  // a vector holds twice as many floats as doubles). Positions outer and heads inner, as the
  // captured [B, T, H, d_h] views lie in memory.
  std::vector<float> prefix(H * (S + 1) * dh), sum(dh);
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t j = 0; j < S; ++j)
      for (int64_t h = 0; h < H; ++h) {
        const float* K = k(b, h, j);
        float* p = prefix.data() + (h * (S + 1) + j) * dh;
#pragma omp simd
        for (int64_t d = 0; d < dh; ++d) p[dh + d] = p[d] + K[d];
      }
    for (int64_t i = 1; i < T; ++i) {
      if (mask[i * S + column]) continue;
      const float inv_n = 1.f / (float)visible[i];
      for (int64_t h = 0; h < H; ++h) {
        const float* p = prefix.data() + h * (S + 1) * dh;
        std::fill(sum.begin(), sum.end(), 0.f);
        for (auto [first, end] : runs[i])
#pragma omp simd
          for (int64_t d = 0; d < dh; ++d) sum[d] += p[end * dh + d] - p[first * dh + d];
        const float *Q = q(b, h, i), *key = k(b, h, column);
        float centred = 0;
#pragma omp simd reduction(+ : centred)
        for (int64_t d = 0; d < dh; ++d) centred += Q[d] * (key[d] - sum[d] * inv_n);
        total[b * H + h] += centred * inv_sqrt;
      }
    }
  }
  std::vector<double> out(B * H);
  for (int64_t bh = 0; bh < B * H; ++bh) out[bh] = rows ? total[bh] / rows : NAN;
  return out;
}

std::vector<float> row_norms(const Tensor& x) {
  Tensor c = x.contiguous();
  const int64_t D = c.size(-1), rows = D ? c.numel() / D : 0;
  std::vector<float> norms(rows);
#pragma omp parallel for if (c.numel() > kParallelMin)
  for (int64_t r = 0; r < rows; ++r) {
    const float* x = c.data() + r * D;
    norms[r] = (float)std::sqrt(row_dot(x, x, D));
  }
  return norms;
}

}  // namespace sl::models
