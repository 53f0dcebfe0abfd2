// The fused attention core: scores, mask, kernel and weighted sum of values for every batch and
// head in a few oneDNN products and one pass over each score row, reading and writing the
// [B, T, H, Dh] layout of the projections directly (no permute copies).
#include <cmath>
#include <limits>

#include "engine/ops.h"
#include "engine/ops/raw.h"

namespace sl {

namespace {

// [B, T, H, Dh] dense seen as [B, H, T, Dh] (a strided view, no copy).
Tensor heads(const Tensor& x) {
  const int64_t B = x.size(0), T = x.size(1), H = x.size(2), D = x.size(3);
  return make_view(x, {B, H, T, D}, {T * H * D, D, H * D, 1}, x.impl()->offset);
}

}  // namespace

Tensor attention(const Tensor& q_in, const Tensor& k_in, const Tensor& v_in, const std::vector<uint8_t>& mask,
                 AttnKernel kernel, float scale, float sigmoid_bias, bool normalize, Tensor* probs) {
  SL_CHECK(q_in.dim() == 4 && q_in.shape() == k_in.shape() && q_in.shape() == v_in.shape(),
           "attention: q, k, v must share one [B, T, H, Dh] shape, got " + shape_str(q_in.shape()) + ", " +
               shape_str(k_in.shape()) + ", " + shape_str(v_in.shape()));
  const int64_t B = q_in.size(0), T = q_in.size(1), H = q_in.size(2), Dh = q_in.size(3);
  SL_CHECK((int64_t)mask.size() == T * T, "attention: mask of " + std::to_string(mask.size()) +
                                              " entries for " + std::to_string(T) + " x " + std::to_string(T) + " scores");
  Tensor q = q_in.contiguous(), k = k_in.contiguous(), v = v_in.contiguous();
  const int64_t rows = B * H * T;
  const bool renorm = normalize && kernel != AttnKernel::Softmax;

  // S = scale * q k^T, then P = kernel(S) row by row; W keeps the unnormalised weights.
  Tensor P = Tensor::empty({B, H, T, T});
  gemm(heads(q.detach()), mT(heads(k.detach())), P, nullptr, false, scale);
  Tensor W = renorm ? Tensor::empty({B, H, T, T}) : P;
  Tensor row_sum = renorm ? Tensor::empty({rows}) : Tensor();
  float* p = P.data();
  if (kernel == AttnKernel::Softmax) {
#pragma omp parallel for if (rows * T > 32768)
    for (int64_t r = 0; r < rows; ++r) {
      const uint8_t* m = mask.data() + (r % T) * T;
      for (int64_t j = 0; j < T; ++j)
        if (m[j]) p[r * T + j] = -std::numeric_limits<float>::infinity();
    }
    softmax_rows(p, p, rows, T, dnnl::algorithm::softmax_accurate);
  } else {
    float* w = W.data();
#pragma omp parallel for if (rows * T > 32768)
    for (int64_t r = 0; r < rows; ++r) {
      const uint8_t* m = mask.data() + (r % T) * T;
      float* s = p + r * T;
      float* wr = w + r * T;
      double sum = 0;
      for (int64_t j = 0; j < T; ++j) {
        float x = s[j];
        float y = kernel == AttnKernel::Sigmoid ? 1.f / (1.f + std::exp(-(x + sigmoid_bias))) : std::max(x, 0.f);
        wr[j] = m[j] ? 0.f : y;
        sum += wr[j];
      }
      if (renorm) {  // P = W / sum_j W
        row_sum.data()[r] = (float)sum;
        for (int64_t j = 0; j < T; ++j) s[j] = wr[j] / (float)sum;
      }
    }
  }

  // O = P v, written straight into [B, T, H, Dh].
  Tensor out = Tensor::empty({B, T, H, Dh});
  gemm(P, heads(v.detach()), heads(out), nullptr, false);
  if (probs) *probs = P.detach();

  return record(out, "attention", {q, k, v},
                [q, k, v, P, W, row_sum, mask, kernel, scale, renorm, T](const Tensor&, const Tensor& g) {
                  const int64_t rows = P.numel() / T;
                  Tensor gO = heads(g);
                  if (needs_grad(v)) gemm(mT(P), gO, heads(grad_of(v)), nullptr, true);  // dV = P^T dO
                  // dP = dO V^T, turned in place into dS = dP * dP/dS, row by row.
                  Tensor dS = Tensor::empty(P.shape());
                  gemm(gO, mT(heads(v.detach())), dS, nullptr, false);
                  float* d = dS.data();
                  const float *p = P.data(), *w = W.data();
#pragma omp parallel for if (rows * T > 32768)
                  for (int64_t r = 0; r < rows; ++r) {
                    const uint8_t* m = mask.data() + (r % T) * T;
                    float* dr = d + r * T;
                    const float *pr = p + r * T, *wr = w + r * T;
                    if (kernel == AttnKernel::Softmax || renorm) {
                      // Through a row normalisation: dW_j = (dP_j - sum_l dP_l P_l) / norm
                      double c = 0;
                      for (int64_t j = 0; j < T; ++j) c += (double)dr[j] * pr[j];
                      if (kernel == AttnKernel::Softmax) {  // dS_j = P_j (dP_j - c)
                        for (int64_t j = 0; j < T; ++j) dr[j] = pr[j] * (dr[j] - (float)c);
                        continue;
                      }
                      float inv = 1.f / row_sum.data()[r];
                      for (int64_t j = 0; j < T; ++j) dr[j] = (dr[j] - (float)c) * inv;
                    }
                    for (int64_t j = 0; j < T; ++j) {  // dS_j = dW_j * w'(s_j), zero where masked
                      float dw = kernel == AttnKernel::Sigmoid ? wr[j] * (1.f - wr[j]) : (wr[j] > 0.f ? 1.f : 0.f);
                      dr[j] = m[j] ? 0.f : dr[j] * dw;
                    }
                  }
                  // S = scale * q k^T:  dq = scale * dS k,  dk = scale * dS^T q
                  if (needs_grad(q)) gemm(dS, heads(k.detach()), heads(grad_of(q)), nullptr, true, scale);
                  if (needs_grad(k)) gemm(mT(dS), heads(q.detach()), heads(grad_of(k)), nullptr, true, scale);
                });
}

}  // namespace sl
