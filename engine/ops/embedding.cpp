// Token embedding: a row gather from the table, whose backward scatter-adds into the table.
#include "engine/ops.h"

namespace sl {

Tensor embedding(const Tensor& weight, const std::vector<int32_t>& ids) {
  SL_CHECK(weight.dim() == 2, "embedding: weight must be [V, D], got " + shape_str(weight.shape()));
  int64_t vocab = weight.size(0);
  for (size_t i = 0; i < ids.size(); ++i)
    SL_CHECK(ids[i] >= 0 && ids[i] < vocab, "embedding: token id " + std::to_string(ids[i]) + " at position " +
                                                std::to_string(i) + " is outside the vocabulary [0, " +
                                                std::to_string(vocab) + ")");
  return gather_rows(weight, ids);
}

}  // namespace sl
