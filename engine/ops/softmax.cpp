// Softmax and log-softmax over the last dimension: oneDNN forward, backward loops over rows.
#include <cmath>
#include <string>

#include "engine/dnnl_context.h"
#include "engine/ops.h"
#include "engine/ops/raw.h"
#include "engine/threads.h"

namespace sl {

void softmax_rows(const float* x, float* y, int64_t R, int64_t D, dnnl::algorithm alg) {
  using dnnl::memory;
  memory::desc md({R, D}, memory::data_type::f32, memory::format_tag::ab);
  std::string key = "softmax_rows:" + std::to_string((int)alg) + ":" + std::to_string(R) + ":" + std::to_string(D);
  auto& prim = dnnl_ctx::cached(key, [&] {
    dnnl::softmax_v2_forward::desc d(dnnl::prop_kind::forward_inference, alg, md, md, 1);
    return dnnl::softmax_v2_forward(dnnl::softmax_v2_forward::primitive_desc(d, dnnl_ctx::engine()));
  });
  memory src(md, dnnl_ctx::engine(), const_cast<float*>(x)), dst(md, dnnl_ctx::engine(), y);
  prim.execute(dnnl_ctx::stream(), {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst}});
  dnnl_ctx::stream().wait();
}

namespace {

// x viewed as [rows, D], normalised along D by oneDNN's softmax (`alg` accurate or log).
Tensor softmax_forward(const Tensor& x, dnnl::algorithm alg, const char* name) {
  SL_CHECK(x.dim() >= 1, std::string(name) + ": needs at least one dimension, got a scalar");
  Tensor out = Tensor::empty(x.shape());
  int64_t D = x.size(-1), R = D ? x.numel() / D : 0;
  if (R > 0) softmax_rows(x.data(), out.data(), R, D, alg);
  return out;
}

// Calls row_grad(y, g, dx, D) for each row; dx is the row of x's gradient to add into.
template <class RowGrad>
void backward_rows(const Tensor& x, const Tensor& y, const Tensor& g, RowGrad row_grad) {
  int64_t D = x.size(-1), R = D ? x.numel() / D : 0;
  float* gx = grad_of(x).data();
  const float *py = y.data(), *pg = g.data();
#pragma omp parallel for if (x.numel() > kParallelMin)
  for (int64_t r = 0; r < R; ++r) row_grad(py + r * D, pg + r * D, gx + r * D, D);
}

}  // namespace

Tensor softmax(const Tensor& x_in) {
  Tensor x = x_in.contiguous();
  Tensor out = softmax_forward(x, dnnl::algorithm::softmax_accurate, "softmax");
  return record(out, "softmax", {x}, [x](const Tensor& out, const Tensor& g) {
    // dx = y * (g - sum(g * y))
    backward_rows(x, out, g, [](const float* y, const float* g, float* dx, int64_t D) {
      double s = 0;
#pragma omp simd reduction(+ : s)
      for (int64_t i = 0; i < D; ++i) s += (double)g[i] * y[i];
      for (int64_t i = 0; i < D; ++i) dx[i] += y[i] * (g[i] - (float)s);
    });
  });
}

Tensor log_softmax(const Tensor& x_in) {
  Tensor x = x_in.contiguous();
  Tensor out = softmax_forward(x, dnnl::algorithm::softmax_log, "log_softmax");
  return record(out, "log_softmax", {x}, [x](const Tensor& out, const Tensor& g) {
    // dx = g - softmax(x) * sum(g), with softmax(x) = exp(y)
    backward_rows(x, out, g, [](const float* y, const float* g, float* dx, int64_t D) {
      double s = 0;
#pragma omp simd reduction(+ : s)
      for (int64_t i = 0; i < D; ++i) s += g[i];
      for (int64_t i = 0; i < D; ++i) dx[i] += g[i] - std::exp(y[i]) * (float)s;
    });
  });
}

}  // namespace sl
