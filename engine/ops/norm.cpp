// Layer norm and RMS norm over the last dimension, forward and backward fused over rows.
// RMS norm is layer norm without centring (mean taken as 0) and without bias, so one
// implementation serves both, with or without the residual add that precedes a pre-norm
// block's norm.
#include <cmath>
#include <vector>

#include "engine/ops.h"
#include "engine/ops/raw.h"
#include "engine/threads.h"

namespace sl {

namespace {

// y = (x - mu) * rstd * w + b per row, rstd = 1 / sqrt(mean((x - mu)^2) + eps), with mu the row
// mean when `centre` and 0 otherwise. w and b may be undefined (no affine part). With `residual`
// defined, x is x_in + residual, written by the same row loop (a pre-norm block's residual add
// and the norm that reads its sum, one pass over the rows) and returned in *sum as add's output.
Tensor normalize(const Tensor& x_in, const Tensor& residual, Tensor* sum, const Tensor& w_in, const Tensor& b_in,
                 float eps, bool centre, const char* name) {
  SL_CHECK(x_in.dim() >= 1, std::string(name) + ": needs at least one dimension, got a scalar");
  SL_CHECK(!residual.defined() || residual.shape() == x_in.shape(),
           std::string(name) + ": residual of shape " + (residual.defined() ? shape_str(residual.shape()) : "") +
               " for input " + shape_str(x_in.shape()) + "; the two are added and must have one shape");
  int64_t D = x_in.size(-1), R = D ? x_in.numel() / D : 0;
  for (const Tensor* p : {&w_in, &b_in})
    SL_CHECK(!p->defined() || p->shape() == Shape{D}, std::string(name) + ": weight/bias of shape " +
                                                         shape_str(p->shape()) + " for input " +
                                                         shape_str(x_in.shape()) + ", expected [" +
                                                         std::to_string(D) + "]");
  const Tensor h = x_in.contiguous(), r = residual.defined() ? residual.contiguous() : Tensor();
  Tensor x = r.defined() ? Tensor::empty(h.shape()) : h;
  Tensor w = w_in.defined() ? w_in.contiguous() : Tensor();
  Tensor b = b_in.defined() ? b_in.contiguous() : Tensor();
  Tensor out = Tensor::empty(x.shape());
  std::vector<float> mu(R), rstd(R);  // per row, kept for the backward
  const float* ph = h.data();
  const float* pr = r.defined() ? r.data() : nullptr;
  float* px = x.data();
  const float* pw = w.defined() ? w.data() : nullptr;
  const float* pb = b.defined() ? b.data() : nullptr;
  float* py = out.data();
  uint16_t* py16 = bf16_values(bf16_image_kept_to_fill(out, recording({h, r, w, b})));  // for the products reading y
#pragma omp parallel for if (x.numel() > kParallelMin)
  for (int64_t row = 0; row < R; ++row) {
    float* xr = px + row * D;
    float* yr = py + row * D;
    if (pr) {
#pragma omp simd
      for (int64_t i = 0; i < D; ++i) xr[i] = ph[row * D + i] + pr[row * D + i];
    }
    double s = 0, ss = 0;
    // omp simd: lets the compiler reorder (and so vectorise) the row sums
    if (centre) {
#pragma omp simd reduction(+ : s)
      for (int64_t i = 0; i < D; ++i) s += xr[i];
    }
    float m = (float)(s / D);
#pragma omp simd reduction(+ : ss)
    for (int64_t i = 0; i < D; ++i) ss += (double)(xr[i] - m) * (xr[i] - m);
    float rs = (float)(1.0 / std::sqrt(ss / D + eps));
    mu[row] = m;
    rstd[row] = rs;
    for (int64_t i = 0; i < D; ++i) {
      float v = (xr[i] - m) * rs;
      if (pw) v *= pw[i];
      if (pb) v += pb[i];
      yr[i] = v;
    }
    if (py16) round_to_bf16(yr, py16 + row * D, D);
  }
  if (r.defined()) *sum = x = record_add(x, h, r);

  return record(out, name, {x, w, b},
                [x, w, b, centre, R, D, mu = std::move(mu), rstd = std::move(rstd)](const Tensor&, const Tensor& g) {
    const float *px = x.data(), *pg = g.data();
    const float* pw = w.defined() ? w.data() : nullptr;
    GradSlot gx_slot = needs_grad(x) ? grad_slot(x) : GradSlot{};
    float* gx = gx_slot.grad.defined() ? gx_slot.grad.data() : nullptr;
    float* gw = needs_grad(w) ? grad_of(w).data() : nullptr;
    float* gb = needs_grad(b) ? grad_of(b).data() : nullptr;
#pragma omp parallel if (x.numel() > kParallelMin)
    {
      // Weight and bias gradients sum over rows: each thread sums its rows, then adds once.
      std::vector<float> dw_sum(gw ? D : 0, 0.f), db_sum(gb ? D : 0, 0.f), xh_row(D), gy_row(D);
      // Plain pointers: through the vectors, the loops below would reload their data per element
      // and stay scalar.
      float *dw = dw_sum.data(), *db = db_sum.data(), *xh = xh_row.data(), *gy = gy_row.data();
#pragma omp for
      for (int64_t r = 0; r < R; ++r) {
        const float *xr = px + r * D, *gr = pg + r * D;
        const float m = mu[r], rs = rstd[r];
        double sum_gy = 0, sum_gy_xh = 0;
#pragma omp simd reduction(+ : sum_gy, sum_gy_xh)
        for (int64_t i = 0; i < D; ++i) {
          xh[i] = (xr[i] - m) * rs;
          gy[i] = pw ? gr[i] * pw[i] : gr[i];
          sum_gy += gy[i];
          sum_gy_xh += (double)gy[i] * xh[i];
        }
        if (gw) {
#pragma omp simd
          for (int64_t i = 0; i < D; ++i) dw[i] += gr[i] * xh[i];
        }
        if (gb) {
#pragma omp simd
          for (int64_t i = 0; i < D; ++i) db[i] += gr[i];
        }
        if (gx) {
          // dx = rstd * (gy - mean(gy) - xh * mean(gy * xh)); no mean(gy) term without centring
          float mean_gy = centre ? (float)(sum_gy / D) : 0.f, mean_gy_xh = (float)(sum_gy_xh / D);
          float* dx = gx + r * D;
          assign_or_add(dx, D, gx_slot.first, [=](int64_t i) { return rs * (gy[i] - mean_gy - xh[i] * mean_gy_xh); });
        }
      }
#pragma omp critical
      {
        for (int64_t i = 0; gw && i < D; ++i) gw[i] += dw[i];
        for (int64_t i = 0; gb && i < D; ++i) gb[i] += db[i];
      }
    }
  });
}

}  // namespace

Tensor rms_norm(const Tensor& x, const Tensor& weight, float eps) {
  return normalize(x, Tensor(), nullptr, weight, Tensor(), eps, /*centre=*/false, "rms_norm");
}

Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, float eps) {
  return normalize(x, Tensor(), nullptr, weight, bias, eps, /*centre=*/true, "layer_norm");
}

ResidualNorm add_rms_norm(const Tensor& h, const Tensor& y, const Tensor& weight, float eps) {
  ResidualNorm out;
  out.normed = normalize(h, y, &out.sum, weight, Tensor(), eps, /*centre=*/false, "rms_norm");
  return out;
}

ResidualNorm add_layer_norm(const Tensor& h, const Tensor& y, const Tensor& weight, const Tensor& bias, float eps) {
  ResidualNorm out;
  out.normed = normalize(h, y, &out.sum, weight, bias, eps, /*centre=*/true, "layer_norm");
  return out;
}

}  // namespace sl
