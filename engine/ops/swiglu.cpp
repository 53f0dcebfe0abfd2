// The SwiGLU gate (Shazeer 2020) in one pass each way:
//   y = silu(a) * b = a * sigmoid(a) * b
//   dy/da = b * sigmoid(a) * (1 + a * (1 - sigmoid(a))),   dy/db = silu(a)
// Composed from silu and mul it would keep silu(a) for the backward and walk the activations
// five times more; here the backward recomputes sigmoid(a) from a.
#include "engine/ops.h"
#include "engine/ops/raw.h"

namespace sl {

namespace {

inline float sigmoid_of(float a) { return 1.f / (1.f + exp_approx(-a)); }

}  // namespace

Tensor swiglu(const Tensor& a_in, const Tensor& b_in) {
  SL_CHECK(a_in.shape() == b_in.shape(), "swiglu: gate " + shape_str(a_in.shape()) + " and value " +
                                             shape_str(b_in.shape()) + " must have one shape");
  Tensor a = a_in.contiguous(), b = b_in.contiguous();
  Tensor out = Tensor::empty(a.shape());
  const float *pa = a.data(), *pb = b.data();
  assign_or_add(out.data(), a.numel(), true, [=](int64_t i) { return pa[i] * sigmoid_of(pa[i]) * pb[i]; });
  return record(out, "swiglu", {a, b}, [a, b](const Tensor&, const Tensor& g) {
    const float *pa = a.data(), *pb = b.data(), *pg = g.data();
    const int64_t n = a.numel();
    if (needs_grad(a)) {
      auto [ga, first] = grad_slot(a);
      assign_or_add(ga.data(), n, first, [=](int64_t i) {
        const float s = sigmoid_of(pa[i]);
        return pg[i] * pb[i] * s * (1.f + pa[i] * (1.f - s));
      });
    }
    if (needs_grad(b)) {
      auto [gb, first] = grad_slot(b);
      assign_or_add(gb.data(), n, first, [=](int64_t i) { return pg[i] * pa[i] * sigmoid_of(pa[i]); });
    }
  });
}

}  // namespace sl
