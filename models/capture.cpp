#include "models/capture.h"

#include "engine/ops.h"

namespace sl::models {

Tensor leading_block(const Tensor& x, const std::vector<int64_t>& extents) {
  Tensor y = x.detach();
  for (size_t d = 0; d < extents.size(); ++d)
    if (extents[d] >= 0 && extents[d] < y.size((int64_t)d)) y = slice(y, (int64_t)d, 0, extents[d]);
  return y;
}

}  // namespace sl::models
