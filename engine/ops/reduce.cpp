// Sums and means, over all elements or over one dimension. Means are scaled sums.
#include <algorithm>
#include <string>

#include "engine/ops.h"
#include "engine/threads.h"

namespace sl {

Tensor sum(const Tensor& x_in) {
  Tensor x = x_in.contiguous();
  const float* px = x.data();
  int64_t n = x.numel();
  double s = 0;  // a long float sum loses digits
#pragma omp parallel for reduction(+ : s) if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) s += px[i];
  Tensor out = Tensor::scalar((float)s);
  return record(out, "sum", {x}, [x](const Tensor&, const Tensor& g) {
    float* gx = grad_of(x).data();
    float g0 = g.item();
    int64_t n = x.numel();
#pragma omp parallel for if (n > kParallelMin)
    for (int64_t i = 0; i < n; ++i) gx[i] += g0;
  });
}

Tensor mean(const Tensor& x) { return scale(sum(x), 1.f / (float)x.numel()); }

// x * 0 is 0 for a finite x and NaN otherwise, so one vectorised sum answers for the whole
// tensor (a std::isfinite test per element stays scalar).
bool all_finite(const Tensor& x_in) {
  Tensor x = x_in.contiguous();
  const float* px = x.data();
  const int64_t n = x.numel();
  float nan_if_any = 0;
#pragma omp parallel for simd reduction(+ : nan_if_any) if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) nan_if_any += px[i] * 0.f;
  return nan_if_any == 0.f;
}

Tensor sum(const Tensor& x_in, int64_t dim, bool keepdim) {
  int64_t nd = x_in.dim();
  int64_t d = dim < 0 ? dim + nd : dim;
  SL_CHECK(d >= 0 && d < nd, "sum: dim " + std::to_string(dim) + " out of range for shape " + shape_str(x_in.shape()));
  Tensor x = x_in.contiguous();
  // x viewed as [outer, n, inner]; the output is [outer, inner] in memory either way.
  const Shape& s = x.shape();
  int64_t outer = 1, n = s[d], inner = 1;
  for (int64_t k = 0; k < d; ++k) outer *= s[k];
  for (int64_t k = d + 1; k < nd; ++k) inner *= s[k];
  Shape out_shape = s;
  if (keepdim)
    out_shape[d] = 1;
  else
    out_shape.erase(out_shape.begin() + d);

  Tensor out = Tensor::zeros(out_shape);
  const float* px = x.data();
  float* po = out.data();
  // Blocks of the inner dim keep a parallel split even when outer == 1 (sum over dim 0).
  constexpr int64_t kBlock = 256;
  int64_t blocks = (inner + kBlock - 1) / kBlock;
#pragma omp parallel for collapse(2) if (x.numel() > kParallelMin)
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t b = 0; b < blocks; ++b) {
      int64_t i0 = b * kBlock, i1 = std::min(inner, i0 + kBlock);
      float* dst = po + o * inner;
      for (int64_t k = 0; k < n; ++k) {
        const float* src = px + (o * n + k) * inner;
        for (int64_t i = i0; i < i1; ++i) dst[i] += src[i];
      }
    }
  return record(out, "sum_dim", {x}, [x, outer, n, inner](const Tensor&, const Tensor& g) {
    float* gx = grad_of(x).data();
    const float* pg = g.data();
#pragma omp parallel for collapse(2) if (x.numel() > kParallelMin)
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t k = 0; k < n; ++k) {
        float* dst = gx + (o * n + k) * inner;
        const float* src = pg + o * inner;
        for (int64_t i = 0; i < inner; ++i) dst[i] += src[i];
      }
  });
}

Tensor mean(const Tensor& x, int64_t dim, bool keepdim) {
  Tensor s = sum(x, dim, keepdim);
  return scale(s, 1.f / (float)x.size(dim));
}

}  // namespace sl
