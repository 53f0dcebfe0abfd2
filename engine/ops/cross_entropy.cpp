// Softmax cross-entropy with PaLM's z-loss, alone and fused with the output layer. Per counted
// row (target != ignore_index):
//   loss_r = lse_r - logits[r, t_r] + z * lse_r^2,   lse_r = logsumexp(logits[r, :])
// and the loss is their mean; d loss_r / d logits[r] = (1 + 2 z lse_r) softmax - onehot(t_r).
// Fused (linear_cross_entropy), the logits x W^T live only inside the op's forward, a chunk of
// rows at a time: the pass that takes a row's logsumexp overwrites the row with its gradient d,
// and the chunk's share of both gradients, d W and d^T x, is taken then, while the chunk is in
// cache. The [N, V] logits are never whole; the backward only scales the two gradients kept.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "engine/ops.h"
#include "engine/ops/raw.h"
#include "engine/threads.h"

namespace sl {

namespace {

// The rows that count (target != ignore_index); every other target must be a class.
int64_t counted_rows(const std::vector<int32_t>& targets, int64_t N, int64_t V, int32_t ignore_index, const char* op) {
  SL_CHECK((int64_t)targets.size() == N, std::string(op) + ": " + std::to_string(targets.size()) + " targets for " +
                                             std::to_string(N) + " rows");
  int64_t count = 0;
  for (int64_t r = 0; r < N; ++r) {
    int32_t t = targets[r];
    if (t == ignore_index) continue;
    SL_CHECK(t >= 0 && t < V, std::string(op) + ": target " + std::to_string(t) + " at row " + std::to_string(r) +
                                  " is outside [0, " + std::to_string(V) + ") and is not ignore_index (" +
                                  std::to_string(ignore_index) + ")");
    ++count;
  }
  return count;
}

// A row's max and logsumexp; e, when given (it may be x itself), receives exp(x_j - max).
struct RowLse {
  float max, lse;
};
RowLse row_lse(const float* x, int64_t V, float* e) {
  float m = x[0];
#pragma omp simd reduction(max : m)
  for (int64_t i = 1; i < V; ++i) m = x[i] > m ? x[i] : m;  // std::max(m, x[i]) keeps GCC 12 scalar
  double s = 0;
  if (e) {
#pragma omp simd reduction(+ : s)
    for (int64_t i = 0; i < V; ++i) s += e[i] = exp_approx(x[i] - m);
  } else {
#pragma omp simd reduction(+ : s)
    for (int64_t i = 0; i < V; ++i) s += exp_approx(x[i] - m);
  }
  return {m, m + (float)std::log(s)};
}

// loss_r without the mean.
double row_loss(RowLse r, float target_logit, float z_loss) {
  return (double)r.lse - target_logit + (double)z_loss * r.lse * r.lse;
}

// The softmax weight of d loss_r / d logits, (1 + 2 z lse).
float softmax_weight(float lse, float z_loss) { return 1.f + 2.f * z_loss * lse; }

// Rows of a chunk of the fused op (times the threads).
constexpr int64_t kChunkRows = 128;

// out[v * n + r] = x[r * V + v]: through tiles of 16 x 16, as rows V floats apart (a power of
// two) share cache sets, and walking them column by column evicts each line before its next
// float is read.
void transpose(const float* x, int64_t n, int64_t V, float* out) {
  constexpr int64_t kTile = 16;
#pragma omp parallel for collapse(2) if (n * V > kParallelMin)
  for (int64_t r0 = 0; r0 < n; r0 += kTile)
    for (int64_t v0 = 0; v0 < V; v0 += kTile) {
      float tile[kTile][kTile];
      const int64_t rn = std::min(kTile, n - r0), vn = std::min(kTile, V - v0);
      for (int64_t r = 0; r < rn; ++r) std::copy(x + (r0 + r) * V + v0, x + (r0 + r) * V + v0 + vn, tile[r]);
      for (int64_t v = 0; v < vn; ++v)
        for (int64_t r = 0; r < rn; ++r) out[(v0 + v) * n + r0 + r] = tile[r][v];
    }
}

}  // namespace

Tensor cross_entropy(const Tensor& logits_in, const std::vector<int32_t>& targets, int32_t ignore_index,
                     float z_loss) {
  SL_CHECK(logits_in.dim() == 2, "cross_entropy: logits must be [N, V], got " + shape_str(logits_in.shape()));
  int64_t N = logits_in.size(0), V = logits_in.size(1);
  const int64_t count = counted_rows(targets, N, V, ignore_index, "cross_entropy");

  Tensor logits = logits_in.contiguous();
  const float* px = logits.data();
  std::vector<float> lse(N);  // per row, kept for the backward
  double total = 0;
#pragma omp parallel for reduction(+ : total) if (logits.numel() > kParallelMin)
  for (int64_t r = 0; r < N; ++r) {
    if (targets[r] == ignore_index) continue;
    const RowLse l = row_lse(px + r * V, V, nullptr);
    lse[r] = l.lse;
    total += row_loss(l, px[r * V + targets[r]], z_loss);
  }
  // With every row ignored there is nothing to average: the loss is 0 and so is its gradient.
  Tensor out = Tensor::scalar(count ? (float)(total / count) : 0.f);

  return record(out, "cross_entropy", {logits},
                [logits, targets, ignore_index, z_loss, count, lse = std::move(lse)](const Tensor&, const Tensor& g) {
    auto [grad, first] = grad_slot(logits);
    float* gx = grad.data();
    int64_t N = logits.size(0), V = logits.size(1);
    const float* px = logits.data();
    float scale = count ? g.item() / (float)count : 0.f;
#pragma omp parallel for if (logits.numel() > kParallelMin)
    for (int64_t r = 0; r < N; ++r) {
      if (targets[r] == ignore_index) {  // no gradient
        if (first) std::fill(gx + r * V, gx + (r + 1) * V, 0.f);
        continue;
      }
      const float* xr = px + r * V;
      const float l = lse[r], p_coef = scale * softmax_weight(l, z_loss);
      assign_or_add(gx + r * V, V, first, [=](int64_t i) { return p_coef * exp_approx(xr[i] - l); });
      gx[r * V + targets[r]] -= scale;
    }
  });
}

Tensor linear_cross_entropy(const Tensor& x_in, const Tensor& w, const std::vector<int32_t>& targets,
                            int32_t ignore_index, float z_loss) {
  SL_CHECK(x_in.dim() == 2 && w.dim() == 2 && x_in.size(1) == w.size(1),
           "linear_cross_entropy: x must be [N, D] and the weight [V, D], got " + shape_str(x_in.shape()) + " and " +
               shape_str(w.shape()));
  const int64_t N = x_in.size(0), V = w.size(0), D = w.size(1);
  const int64_t count = counted_rows(targets, N, V, ignore_index, "linear_cross_entropy");
  Tensor x = x_in.contiguous();
  const Tensor xd = x.detach(), wd = w.detach();
  const Bf16Image x16 = bf16_image_kept(x), w16 = bf16_image(w);
  const bool grads = recording({x, w});
  // d loss / dx and d loss / dW times count, summed over the chunks
  Tensor dx = grads && needs_grad(x) ? Tensor::empty({N, D}) : Tensor();
  Tensor dw = grads && needs_grad(w) ? Tensor::zeros({V, D}) : Tensor();
  // Rows a chunk: its logits and their transpose stay in each core's L2 (512 KB at V = 1024).
  const int64_t rows = std::max<int64_t>(1, std::min(N, kChunkRows * num_threads()));
  double total = 0;
  for (int64_t r0 = 0; r0 < N; r0 += rows) {
    const int64_t n = std::min(rows, N - r0);
    const Tensor xc = rows_of(xd, r0, r0 + n);
    Tensor logits = Tensor::empty({n, V});  // becomes d loss / d logits * count, row by row
    gemm(xc, mT(wd), logits, nullptr, false, 1.f, x16, w16);
    float* px = logits.data();
    const int32_t* tc = targets.data() + r0;
#pragma omp parallel for reduction(+ : total) if (logits.numel() > kParallelMin)
    for (int64_t r = 0; r < n; ++r) {
      float* xr = px + r * V;
      if (tc[r] == ignore_index) {
        if (grads) std::fill(xr, xr + V, 0.f);
        continue;
      }
      const float target_logit = xr[tc[r]];
      const RowLse l = row_lse(xr, V, grads ? xr : nullptr);
      total += row_loss(l, target_logit, z_loss);
      if (grads) {  // d = exp(x - max) * e^(max - lse) * (1 + 2 z lse) - onehot
        const float c = softmax_weight(l.lse, z_loss) * std::exp(l.max - l.lse);
#pragma omp simd
        for (int64_t i = 0; i < V; ++i) xr[i] *= c;
        xr[tc[r]] -= 1.f;
      }
    }
    if (!grads) continue;
    const Bf16Image d16 = bf16_image_to_fill(logits);
    if (uint16_t* p16 = bf16_values(d16)) round_to_bf16(px, p16, logits.numel());
    if (dx.defined()) gemm(logits, wd, rows_of(dx, r0, r0 + n), nullptr, false, 1.f, d16, w16);  // dx = d W
    if (dw.defined()) {  // dW = d^T x, from d transposed: oneDNN's gemm reads a transposed view at half speed
      Tensor dt = Tensor::empty({V, n});
      transpose(px, n, V, dt.data());
      const Bf16Image dt16 = bf16_image_to_fill(dt);
      if (uint16_t* p16 = bf16_values(dt16)) round_to_bf16(dt.data(), p16, dt.numel());
      gemm(dt, xc, dw, nullptr, true, 1.f, dt16, x16);
    }
  }
  Tensor out = Tensor::scalar(count ? (float)(total / count) : 0.f);

  return record(out, "linear_cross_entropy", {x, w}, [x, w, dx, dw, count](const Tensor&, const Tensor& g) {
    // The gradients above are of the sum of the rows' losses; the mean's 1 / count and g scale them.
    const float alpha = count ? g.item() / (float)count : 0.f;
    for (auto [t, d] : {std::pair{&x, &dx}, std::pair{&w, &dw}}) {
      if (!needs_grad(*t)) continue;
      auto [grad, first] = grad_slot(*t);
      const float* pd = d->data();
      assign_or_add(grad.data(), grad.numel(), first, [=](int64_t i) { return alpha * pd[i]; });
    }
  });
}

}  // namespace sl
