// The SwiGLU gate (Shazeer 2020) in one pass each way, on the gate a and the value b side by side
// in the last dimension of one tensor h = [a | b] (one product x [W1; W3]^T makes both):
//   y = silu(a) * b = a * sigmoid(a) * b
//   dy/da = b * sigmoid(a) * (1 + a * (1 - sigmoid(a))),   dy/db = silu(a)
// Composed from silu and mul it would keep silu(a) for the backward and walk the activations
// five times more; here the backward recomputes sigmoid(a) from a.
#include <algorithm>

#include "engine/ops.h"
#include "engine/ops/raw.h"
#include "engine/threads.h"

namespace sl {

namespace {

inline float sigmoid_of(float a) { return 1.f / (1.f + exp_approx(-a)); }

// The next row of h, asked for while this one computes: read from memory, a row's two halves are
// two short streams, which the hardware prefetcher has to find anew at every row and mostly
// finds too late.
inline void prefetch_row(const float* row, int64_t n) {
  for (int64_t i = 0; i < n; i += 16) __builtin_prefetch(row + i);  // 16 floats: a cache line
}

// One row's F outputs from its gate a[0, F) and value b[0, F) = a + F.
void gate_row(const float* a, float* y, int64_t F) {
  const float* b = a + F;
#pragma omp simd
  for (int64_t i = 0; i < F; ++i) y[i] = a[i] * sigmoid_of(a[i]) * b[i];
}

// One row's dL/da and dL/db into d[0, 2F), written (First) or added to. Without AVX-512's masks
// GCC 12 leaves the loop scalar if it selects on a bool inside it, so First is a template argument.
template <bool First>
void gate_grad_row(const float* a, const float* g, float* d, int64_t F) {
  const float* b = a + F;
  float* db = d + F;
#pragma omp simd
  for (int64_t i = 0; i < F; ++i) {
    const float s = sigmoid_of(a[i]), silu = a[i] * s;
    const float va = g[i] * b[i] * (s + silu * (1.f - s)), vb = g[i] * silu;
    d[i] = First ? va : d[i] + va;
    db[i] = First ? vb : db[i] + vb;
  }
}

}  // namespace

Tensor swiglu(const Tensor& h_in) {
  SL_CHECK(h_in.dim() >= 1 && h_in.size(-1) % 2 == 0,
           "swiglu: the last dimension holds the gate and then the value, so it must be even; got " +
               shape_str(h_in.shape()));
  const Tensor h = h_in.contiguous();
  const int64_t F = h.size(-1) / 2, rows = F ? h.numel() / (2 * F) : 0;
  Shape shape = h.shape();
  shape.back() = F;
  Tensor out = Tensor::empty(shape);
  const float* ph = h.data();
  float* py = out.data();
  uint16_t* py16 = bf16_values(bf16_image_kept_to_fill(out, recording({h})));  // for the product that reads it
#pragma omp parallel for if (h.numel() > kParallelMin)
  for (int64_t r = 0; r < rows; ++r) {
    if (r + 1 < rows) prefetch_row(ph + (r + 1) * 2 * F, 2 * F);
    gate_row(ph + r * 2 * F, py + r * F, F);
    if (py16) round_to_bf16(py + r * F, py16 + r * F, F);
  }
  return record(out, "swiglu", {h}, [h, F, rows](const Tensor&, const Tensor& g) {
    GradSlot dh = grad_slot(h);
    const float *ph = h.data(), *pg = g.data();
    float* d = dh.grad.data();
    // A first contribution keeps its bf16 rounding for the products of the layer behind.
    uint16_t* d16 = bf16_values(bf16_image_kept_to_fill(dh.grad, dh.first));
#pragma omp parallel for if (h.numel() > kParallelMin)
    for (int64_t r = 0; r < rows; ++r) {
      float* dr = d + r * 2 * F;
      if (r + 1 < rows) prefetch_row(ph + (r + 1) * 2 * F, 2 * F);
      if (dh.first) gate_grad_row<true>(ph + r * 2 * F, pg + r * F, dr, F);
      else gate_grad_row<false>(ph + r * 2 * F, pg + r * F, dr, F);
      if (d16) round_to_bf16(dr, d16 + r * 2 * F, 2 * F);
    }
  });
}

}  // namespace sl
