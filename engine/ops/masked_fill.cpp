// Replaces masked entries with a constant (e.g. -inf before a softmax); they pass no gradient.
#include "engine/ops.h"
#include "engine/threads.h"

namespace sl {

Tensor masked_fill(const Tensor& x_in, const std::vector<uint8_t>& mask, const Shape& mask_shape, float value) {
  int64_t nm = (int64_t)mask_shape.size();
  SL_CHECK(nm <= x_in.dim() && Shape(x_in.shape().end() - nm, x_in.shape().end()) == mask_shape,
           "masked_fill: mask shape " + shape_str(mask_shape) + " is not the trailing shape of x " +
               shape_str(x_in.shape()));
  SL_CHECK((int64_t)mask.size() == shape_numel(mask_shape),
           "masked_fill: " + std::to_string(mask.size()) + " mask values for mask shape " + shape_str(mask_shape));
  Tensor x = x_in.contiguous();
  Tensor out = Tensor::empty(x.shape());
  int64_t m = shape_numel(mask_shape), outer = m ? x.numel() / m : 0;
  const float* xd = x.data();
  float* od = out.data();
#pragma omp parallel for if (x.numel() > kParallelMin)
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < m; ++i) od[o * m + i] = mask[i] ? value : xd[o * m + i];
  return record(out, "masked_fill", {x}, [x, mask, m, outer](const Tensor&, const Tensor& g) {
    float* gx = grad_of(x).data();
    const float* gg = g.data();
#pragma omp parallel for if (g.numel() > kParallelMin)
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t i = 0; i < m; ++i)
        if (!mask[i]) gx[o * m + i] += gg[o * m + i];
  });
}

}  // namespace sl
