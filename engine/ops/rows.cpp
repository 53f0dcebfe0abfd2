// Row gathers and scatter-adds (adjoints of each other) and top-k selection.
#include <algorithm>
#include <numeric>

#include "engine/ops.h"
#include "engine/threads.h"

namespace sl {

static void check_indices(const char* op, const std::vector<int32_t>& idx, int64_t n_rows) {
  for (size_t i = 0; i < idx.size(); ++i)
    SL_CHECK(idx[i] >= 0 && idx[i] < n_rows, std::string(op) + ": index " + std::to_string(idx[i]) +
                                                 " at position " + std::to_string(i) + " is outside [0, " +
                                                 std::to_string(n_rows) + ")");
}

// dst[i] (+)= src[idx[i]] for rows of length d.
static void gather(const float* src, const std::vector<int32_t>& idx, int64_t d, float* dst, bool accumulate) {
  int64_t m = (int64_t)idx.size();
#pragma omp parallel for if (m * d > kParallelMin)
  for (int64_t i = 0; i < m; ++i) {
    const float* s = src + idx[i] * d;
    float* t = dst + i * d;
    if (accumulate)
      for (int64_t j = 0; j < d; ++j) t[j] += s[j];
    else
      for (int64_t j = 0; j < d; ++j) t[j] = s[j];
  }
}

// dst[idx[i]] += src[i]. Repeated indices would race across rows, so threads own disjoint
// column blocks instead and each sweeps every row.
static void scatter_add(const float* src, const std::vector<int32_t>& idx, int64_t d, float* dst) {
  int64_t m = (int64_t)idx.size(), block = 16;
#pragma omp parallel for if (m * d > kParallelMin)
  for (int64_t j0 = 0; j0 < d; j0 += block) {
    int64_t j1 = std::min(d, j0 + block);
    for (int64_t i = 0; i < m; ++i) {
      const float* s = src + i * d;
      float* t = dst + idx[i] * d;
      for (int64_t j = j0; j < j1; ++j) t[j] += s[j];
    }
  }
}

Tensor gather_rows(const Tensor& x_in, const std::vector<int32_t>& idx) {
  SL_CHECK(x_in.dim() == 2, "gather_rows: x must be [N, D], got " + shape_str(x_in.shape()));
  check_indices("gather_rows", idx, x_in.size(0));
  Tensor x = x_in.contiguous();
  int64_t d = x.size(1);
  Tensor out = Tensor::empty({(int64_t)idx.size(), d});
  gather(x.data(), idx, d, out.data(), false);
  return record(out, "gather_rows", {x}, [x, idx, d](const Tensor&, const Tensor& g) {
    scatter_add(g.data(), idx, d, grad_of(x).data());
  });
}

Tensor scatter_add_rows(const Tensor& x_in, const std::vector<int32_t>& idx, int64_t n_rows) {
  SL_CHECK(x_in.dim() == 2 && x_in.size(0) == (int64_t)idx.size(),
           "scatter_add_rows: x must be [" + std::to_string(idx.size()) + ", D] (one row per index), got " +
               shape_str(x_in.shape()));
  check_indices("scatter_add_rows", idx, n_rows);
  Tensor x = x_in.contiguous();
  int64_t d = x.size(1);
  Tensor out = Tensor::zeros({n_rows, d});
  scatter_add(x.data(), idx, d, out.data());
  return record(out, "scatter_add_rows", {x}, [x, idx, d](const Tensor&, const Tensor& g) {
    gather(g.data(), idx, d, grad_of(x).data(), true);
  });
}

TopK topk(const Tensor& x_in, int64_t k) {
  SL_CHECK(x_in.dim() == 2, "topk: x must be [N, E], got " + shape_str(x_in.shape()));
  int64_t n = x_in.size(0), e = x_in.size(1);
  SL_CHECK(k >= 1 && k <= e, "topk: k = " + std::to_string(k) + " must lie in [1, " + std::to_string(e) + "]");
  Tensor x = x_in.contiguous();
  Tensor values = Tensor::empty({n, k});
  std::vector<int32_t> indices(n * k);
  const float* xd = x.data();
  float* vd = values.data();
#pragma omp parallel for if (n * e > 16384)
  for (int64_t r = 0; r < n; ++r) {
    const float* row = xd + r * e;
    std::vector<int32_t> order(e);
    std::iota(order.begin(), order.end(), 0);
    std::partial_sort(order.begin(), order.begin() + k, order.end(), [row](int32_t a, int32_t b) {
      return row[a] > row[b] || (row[a] == row[b] && a < b);
    });
    for (int64_t j = 0; j < k; ++j) {
      indices[r * k + j] = order[j];
      vd[r * k + j] = row[order[j]];
    }
  }
  values = record(values, "topk", {x}, [x, indices, k](const Tensor&, const Tensor& g) {
    // Each chosen entry receives the gradient of its value; the others get none.
    float* gx = grad_of(x).data();
    const float* gg = g.data();
    int64_t e = x.size(1);
    for (int64_t i = 0; i < (int64_t)indices.size(); ++i) gx[(i / k) * e + indices[i]] += gg[i];
  });
  return {values, indices};
}

}  // namespace sl
