// Pointwise functions y = f(x), forward and backward through oneDNN's eltwise primitives. Their
// JIT-vectorised derivatives matter: a scalar erf/exp loop for GELU's backward would cost more
// than the MLP matmuls around it.
#include <bit>
#include <cstdint>
#include <string>

#include "engine/dnnl_context.h"
#include "engine/ops.h"
#include "engine/ops/raw.h"

namespace sl {

namespace {

using dnnl::algorithm;
using dnnl::memory;

// The cached oneDNN eltwise primitive computing `alg` on n floats: the forward (dst = f(src)),
// or the backward from src (diff_src = diff_dst * f'(src)).
dnnl::primitive& eltwise_primitive(algorithm alg, float alpha, int64_t n, bool backward) {
  std::string key = std::string(backward ? "eltwise_bwd:" : "eltwise_fwd:") + std::to_string((int)alg) + ":" +
                    std::to_string(std::bit_cast<uint32_t>(alpha)) + ":" + std::to_string(n);
  return dnnl_ctx::cached(key, [&]() -> dnnl::primitive {
    memory::desc md({n}, memory::data_type::f32, memory::format_tag::a);
    dnnl::eltwise_forward::desc fwd(dnnl::prop_kind::forward_training, alg, md, alpha, 0.f);
    dnnl::eltwise_forward::primitive_desc fwd_pd(fwd, dnnl_ctx::engine());
    if (!backward) return dnnl::eltwise_forward(fwd_pd);
    dnnl::eltwise_backward::desc bwd(alg, md, md, alpha, 0.f);
    return dnnl::eltwise_backward(dnnl::eltwise_backward::primitive_desc(bwd, dnnl_ctx::engine(), fwd_pd));
  });
}

memory as_memory(const Tensor& t) {
  memory::desc md({t.numel()}, memory::data_type::f32, memory::format_tag::a);
  return memory(md, dnnl_ctx::engine(), const_cast<float*>(t.data()));
}

// y = f(x) for oneDNN's `alg` (with its `alpha` parameter); the backward adds g * f'(x) into
// the gradient of x.
Tensor eltwise(const Tensor& x_in, algorithm alg, float alpha, const char* name) {
  Tensor x = x_in.contiguous();
  Tensor out = Tensor::empty(x.shape());
  int64_t n = x.numel();
  if (n == 0) return out;
  eltwise_primitive(alg, alpha, n, false)
      .execute(dnnl_ctx::stream(), {{DNNL_ARG_SRC, as_memory(x)}, {DNNL_ARG_DST, as_memory(out)}});
  dnnl_ctx::stream().wait();
  return record(out, name, {x}, [x, alg, alpha, n](const Tensor&, const Tensor& g) {
    // oneDNN overwrites diff_src: the first contribution lands in x's gradient directly, a later
    // one goes through a scratch buffer and is added.
    auto [gx_t, first] = grad_slot(x);
    Tensor dx = first ? gx_t : Tensor::empty(x.shape());
    eltwise_primitive(alg, alpha, n, true)
        .execute(dnnl_ctx::stream(),
                 {{DNNL_ARG_SRC, as_memory(x)}, {DNNL_ARG_DIFF_DST, as_memory(g)}, {DNNL_ARG_DIFF_SRC, as_memory(dx)}});
    dnnl_ctx::stream().wait();
    if (first) return;
    const float* pd = dx.data();
    assign_or_add(gx_t.data(), n, false, [pd](int64_t i) { return pd[i]; });
  });
}

}  // namespace

Tensor relu(const Tensor& x) { return eltwise(x, algorithm::eltwise_relu, 0.f, "relu"); }
Tensor gelu(const Tensor& x) { return eltwise(x, algorithm::eltwise_gelu_erf, 0.f, "gelu"); }
Tensor gelu_tanh(const Tensor& x) { return eltwise(x, algorithm::eltwise_gelu_tanh, 0.f, "gelu_tanh"); }
// swish is x * sigmoid(alpha x); alpha = 1 is SiLU
Tensor silu(const Tensor& x) { return eltwise(x, algorithm::eltwise_swish, 1.f, "silu"); }
Tensor sigmoid(const Tensor& x) { return eltwise(x, algorithm::eltwise_logistic, 0.f, "sigmoid"); }
Tensor elu(const Tensor& x, float alpha) { return eltwise(x, algorithm::eltwise_elu, alpha, "elu"); }
Tensor tanh(const Tensor& x) { return eltwise(x, algorithm::eltwise_tanh, 0.f, "tanh"); }
Tensor exp(const Tensor& x) { return eltwise(x, algorithm::eltwise_exp, 0.f, "exp"); }
Tensor log(const Tensor& x) { return eltwise(x, algorithm::eltwise_log, 0.f, "log"); }
Tensor square(const Tensor& x) { return eltwise(x, algorithm::eltwise_square, 0.f, "square"); }
Tensor sqrt(const Tensor& x) { return eltwise(x, algorithm::eltwise_sqrt, 0.f, "sqrt"); }

}  // namespace sl
