// Softmax cross-entropy with PaLM's z-loss, alone and fused with the output layer. Per counted
// row (target != ignore_index):
//   loss_r = lse_r - logits[r, t_r] + z * lse_r^2,   lse_r = logsumexp(logits[r, :])
// and the loss is their mean; d loss_r / d logits[r] = (1 + 2 z lse_r) softmax - onehot(t_r).
// Fused (linear_cross_entropy), the logits x W^T live only inside the op: the pass that takes a
// row's logsumexp also overwrites the row with its gradient (in bf16, writes instead the bf16
// rounding both backward products read), so the backward is the two products alone, and the
// [N, V] logits are neither read again nor joined by a gradient buffer of their size.
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

// out[v * ld + r] = x[r * V + v] for rows r < n <= kBlock: through a tile of kBlock x kBlock, as
// rows V floats apart (a power of two) share cache sets, and reading the block column by column
// evicts each line before its next float is read.
constexpr int64_t kBlock = 16;
void transpose_block(const float* x, int64_t n, int64_t V, float* out, int64_t ld) {
  float tile[kBlock][kBlock];
  for (int64_t v0 = 0; v0 < V; v0 += kBlock) {
    const int64_t m = std::min(kBlock, V - v0);
    for (int64_t r = 0; r < n; ++r) std::copy(x + r * V + v0, x + r * V + v0 + m, tile[r]);
    for (int64_t l = 0; l < m; ++l)
      for (int64_t r = 0; r < n; ++r) out[(v0 + l) * ld + r] = tile[r][l];
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
  const int64_t N = x_in.size(0), V = w.size(0);
  const int64_t count = counted_rows(targets, N, V, ignore_index, "linear_cross_entropy");
  Tensor x = x_in.contiguous();
  Tensor logits = Tensor::empty({N, V});  // becomes d loss / d logits * count, row by row
  gemm(x.detach(), mT(w.detach()), logits, nullptr, false, 1.f, bf16_image_kept(x));
  const bool grads = recording({x, w});
  const Bf16Image d16 = grads ? bf16_image_to_fill(logits) : Bf16Image{};
  uint16_t* p16 = bf16_values(d16);
  // In f32 the gradient is also written transposed, [V, N], for dW = d^T x: oneDNN's f32 gemm reads
  // a product's left operand at about half speed when its rows are not contiguous in memory.
  Tensor dt = grads && !p16 && needs_grad(w) ? Tensor::empty({V, N}) : Tensor();
  float *px = logits.data(), *pt = dt.defined() ? dt.data() : nullptr;
  double total = 0;
#pragma omp parallel reduction(+ : total) if (logits.numel() > kParallelMin)
  {
    std::vector<float> row(p16 ? V : 0);  // the gradient row before its rounding, in bf16
#pragma omp for
    for (int64_t r0 = 0; r0 < N; r0 += kBlock) {  // kBlock rows: their transposed gradient fills cache lines of dt
      const int64_t r1 = std::min(N, r0 + kBlock);
      for (int64_t r = r0; r < r1; ++r) {
        float *xr = px + r * V, *d = p16 ? row.data() : xr;
        const bool counted = targets[r] != ignore_index;
        if (counted) {
          const float target_logit = xr[targets[r]];
          const RowLse l = row_lse(xr, V, grads ? d : nullptr);
          total += row_loss(l, target_logit, z_loss);
          if (grads) {  // d = exp(x - max) * e^(max - lse) * (1 + 2 z lse) - onehot
            const float c = softmax_weight(l.lse, z_loss) * std::exp(l.max - l.lse);
#pragma omp simd
            for (int64_t i = 0; i < V; ++i) d[i] *= c;
            d[targets[r]] -= 1.f;
          }
        } else if (grads) {
          std::fill(d, d + V, 0.f);
        }
        if (grads && p16) round_to_bf16(d, p16 + r * V, V);
      }
      if (pt) transpose_block(px + r0 * V, r1 - r0, V, pt + r0, N);
    }
  }
  Tensor out = Tensor::scalar(count ? (float)(total / count) : 0.f);

  return record(out, "linear_cross_entropy", {x, w}, [x, w, logits, dt, d16, count](const Tensor&, const Tensor& g) {
    // The gradient rows above are d loss_r / d logits; the mean's 1 / count and g scale the products.
    const float alpha = count ? g.item() / (float)count : 0.f;
    if (needs_grad(x)) {
      auto [gx, first] = grad_slot(x);
      gemm(logits, w.detach(), gx, nullptr, !first, alpha, d16);  // dx = alpha d W
    }
    if (needs_grad(w))  // dW += alpha d^T x
      gemm(dt.defined() ? dt : mT(logits), x.detach(), grad_of(w), nullptr, true, alpha, d16);
  });
}

}  // namespace sl
