// What the two paths of the fused attention core share (ops/attention.cpp): the blocked path
// on oneDNN's batched products, and the tiled path for short windows (ops/attention_tiles.cpp).
#pragma once
#include <algorithm>
#include <cstdint>
#include <limits>
#include <vector>

#include "engine/attention_kernels.h"
#include "engine/tensor.h"

namespace sl {

// The keys query i sees, one run [lo, hi): every mask the op serves (causal, prefix, sliding,
// bidirectional) is a run per query, so row loops need no per-key test.
struct Run {
  int64_t lo, hi;
};

// A [T, T] mask's run per query; refuses a mask that gives a query more than one run.
std::vector<Run> runs_of(const std::vector<uint8_t>& mask, int64_t T);

// One score row's weights by the kernel's fused row, for both paths: the pass runs over
// [lo0, hi0), which holds the visible keys [lo, hi) and, around them, masked keys the caller set
// to -inf (every fused row weighs them 0); then s, and w when a row sum divides, are zero outside
// [lo, hi) up to n, and P = W / sum inside. Returns sum_j W_j.
inline float weigh_row(FusedRow kernel_row, float* s, float* w, int64_t lo, int64_t hi, int64_t lo0, int64_t hi0,
                       int64_t n, float bias, bool renorm) {
  std::fill(s + lo0, s + lo, -std::numeric_limits<float>::infinity());
  std::fill(s + hi, s + hi0, -std::numeric_limits<float>::infinity());
  const float sum = kernel_row(s, w, lo0, hi0, bias);
  for (float* row : {s, w}) {  // masked keys weigh 0 (w is s itself unless a row sum divides)
    std::fill(row, row + lo, 0.f);
    std::fill(row + hi, row + n, 0.f);
    if (!renorm) break;
  }
  if (renorm)  // P = W / sum_j W
#pragma omp simd
    for (int64_t j = lo; j < hi; ++j) s[j] = w[j] / sum;
  return sum;
}

// A row's gradient over its keys [0, n): dr holds dL/dP on entry and dL/ds on return, through
// P = W / sum (the row's `sum`) when renormalised.
inline void weigh_grad_row(FusedGradRow kernel_grad_row, float* dr, const float* pr, const float* wr, int64_t n,
                           float sum, bool renorm) {
  if (renorm) {  // through P = W / sum: dL/dW_j = (dL/dP_j - sum_l dL/dP_l P_l) / sum
    float c = 0;
#pragma omp simd reduction(+ : c)
    for (int64_t j = 0; j < n; ++j) c += dr[j] * pr[j];
    const float inv = 1.f / sum;
#pragma omp simd
    for (int64_t j = 0; j < n; ++j) dr[j] = (dr[j] - c) * inv;
  }
  kernel_grad_row(dr, pr, wr, n);
}

// The longest window, and the widest head, that the tiled path takes: a (sequence, head)'s
// q, k, v, scores and their gradients then fit in L1.
constexpr int64_t kTileMax = 64;

// The attention core for T, Dh <= kTileMax, one (sequence, head) at a time, in f32 (whatever the
// matmul precision). Returns O [B, T, H, Dh] (recorded) and sets P [B, H, T, T] (dense, the
// normalised weights: what the blocked path's single block holds).
Tensor attention_in_tiles(const Tensor& q, const Tensor& k, const Tensor& v, const std::vector<Run>& runs,
                          const AttentionKernel& kernel, float scale, float kernel_bias, bool renorm, Tensor* P);

}  // namespace sl
