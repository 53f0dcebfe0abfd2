// Pointwise functions y = f(x): oneDNN eltwise forward, and a backward loop with the analytic
// derivative written in terms of whichever of x and y makes it cheapest.
#include <bit>
#include <cmath>
#include <cstdint>
#include <string>

#include "engine/dnnl_context.h"
#include "engine/ops.h"

namespace sl {

namespace {

constexpr int64_t kParallelMin = 32768;  // elements; below this threads cost more than they save

// y = f(x) with oneDNN's `alg` (primitive cached per algorithm, alpha and size); the backward
// adds g * dfdx(x, y) into the gradient of x.
template <class Derivative>
Tensor eltwise(const Tensor& x_in, dnnl::algorithm alg, float alpha, const char* name, Derivative dfdx) {
  Tensor x = x_in.contiguous();
  Tensor out = Tensor::empty(x.shape());
  int64_t n = x.numel();
  if (n > 0) {
    using dnnl::memory;
    memory::desc md({n}, memory::data_type::f32, memory::format_tag::a);
    std::string key = "eltwise:" + std::to_string((int)alg) + ":" + std::to_string(std::bit_cast<uint32_t>(alpha)) + ":" + std::to_string(n);
    auto& prim = dnnl_ctx::cached(key, [&] {
      dnnl::eltwise_forward::desc d(dnnl::prop_kind::forward_inference, alg, md, alpha, 0.f);
      return dnnl::eltwise_forward(dnnl::eltwise_forward::primitive_desc(d, dnnl_ctx::engine()));
    });
    memory src(md, dnnl_ctx::engine(), x.data()), dst(md, dnnl_ctx::engine(), out.data());
    prim.execute(dnnl_ctx::stream(), {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst}});
    dnnl_ctx::stream().wait();
  }
  return record(out, name, {x}, [x, dfdx](const Tensor& out, const Tensor& g) {
    float* gx = grad_of(x).data();
    const float *px = x.data(), *py = out.data(), *pg = g.data();
    int64_t n = x.numel();
#pragma omp parallel for if (n > kParallelMin)
    for (int64_t i = 0; i < n; ++i) gx[i] += pg[i] * dfdx(px[i], py[i]);
  });
}

using dnnl::algorithm;
constexpr float kSqrt2OverPi = 0.7978845608028654f;
constexpr float kInvSqrt2Pi = 0.3989422804014327f;
constexpr float kInvSqrt2 = 0.7071067811865476f;

}  // namespace

Tensor relu(const Tensor& x) {
  return eltwise(x, algorithm::eltwise_relu, 0.f, "relu", [](float x, float) { return x > 0.f ? 1.f : 0.f; });
}

Tensor gelu(const Tensor& x) {
  // x * Phi(x): Phi(x) + x * phi(x)
  return eltwise(x, algorithm::eltwise_gelu_erf, 0.f, "gelu", [](float x, float) {
    return 0.5f * (1.f + std::erf(x * kInvSqrt2)) + x * kInvSqrt2Pi * std::exp(-0.5f * x * x);
  });
}

Tensor gelu_tanh(const Tensor& x) {
  // 0.5 x (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3)
  return eltwise(x, algorithm::eltwise_gelu_tanh, 0.f, "gelu_tanh", [](float x, float) {
    float t = std::tanh(kSqrt2OverPi * (x + 0.044715f * x * x * x));
    return 0.5f * (1.f + t) + 0.5f * x * (1.f - t * t) * kSqrt2OverPi * (1.f + 3.f * 0.044715f * x * x);
  });
}

Tensor silu(const Tensor& x) {
  // swish with alpha = 1 is x * sigmoid(x): s (1 + x (1 - s))
  return eltwise(x, algorithm::eltwise_swish, 1.f, "silu", [](float x, float) {
    float s = 1.f / (1.f + std::exp(-x));
    return s * (1.f + x * (1.f - s));
  });
}

Tensor sigmoid(const Tensor& x) {
  return eltwise(x, algorithm::eltwise_logistic, 0.f, "sigmoid", [](float, float y) { return y * (1.f - y); });
}

Tensor elu(const Tensor& x, float alpha) {
  // for x <= 0, y = alpha (e^x - 1) so dy/dx = alpha e^x = y + alpha
  return eltwise(x, algorithm::eltwise_elu, alpha, "elu",
                 [alpha](float x, float y) { return x > 0.f ? 1.f : y + alpha; });
}

Tensor tanh(const Tensor& x) {
  return eltwise(x, algorithm::eltwise_tanh, 0.f, "tanh", [](float, float y) { return 1.f - y * y; });
}

Tensor exp(const Tensor& x) {
  return eltwise(x, algorithm::eltwise_exp, 0.f, "exp", [](float, float y) { return y; });
}

Tensor log(const Tensor& x) {
  return eltwise(x, algorithm::eltwise_log, 0.f, "log", [](float x, float) { return 1.f / x; });
}

Tensor square(const Tensor& x) {
  return eltwise(x, algorithm::eltwise_square, 0.f, "square", [](float x, float) { return 2.f * x; });
}

Tensor sqrt(const Tensor& x) {
  return eltwise(x, algorithm::eltwise_sqrt, 0.f, "sqrt", [](float, float y) { return 0.5f / y; });
}

}  // namespace sl
