// The SwiGLU gate (Shazeer 2020) in one pass each way:
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

// dL/da and dL/db over [c, end), each written (first) or added to. Without AVX-512's masks GCC 12
// leaves the loop scalar if it tests the gradients' pointers inside it (so they are template
// arguments) or selects on a bool (so the flags are ints, and the pass is not inlined where the
// compiler would see through them).
template <bool A, bool B>
[[gnu::noinline]] void grad_pass(const float* pa, const float* pb, const float* pg, float* da, float* db, int da_first, int db_first,
               int64_t c, int64_t end) {
#pragma omp simd
  for (int64_t i = c; i < end; ++i) {
    const float s = sigmoid_of(pa[i]), silu = pa[i] * s;
    if constexpr (A) {
      const float v = pg[i] * pb[i] * (s + silu * (1.f - s));
      da[i] = da_first ? v : da[i] + v;
    }
    if constexpr (B) {
      const float v = pg[i] * silu;
      db[i] = db_first ? v : db[i] + v;
    }
  }
}

}  // namespace

Tensor swiglu(const Tensor& a_in, const Tensor& b_in) {
  SL_CHECK(a_in.shape() == b_in.shape(), "swiglu: gate " + shape_str(a_in.shape()) + " and value " +
                                             shape_str(b_in.shape()) + " must have one shape");
  Tensor a = a_in.contiguous(), b = b_in.contiguous();
  Tensor out = Tensor::empty(a.shape());
  const float *pa = a.data(), *pb = b.data();
  const Bf16Image out16 = bf16_image_kept_to_fill(out, recording({a, b}));  // for the product that reads it
  assign_or_add(out.data(), a.numel(), true, [=](int64_t i) { return pa[i] * sigmoid_of(pa[i]) * pb[i]; },
                bf16_values(out16));
  return record(out, "swiglu", {a, b}, [a, b](const Tensor&, const Tensor& g) {
    GradSlot ga = needs_grad(a) ? grad_slot(a) : GradSlot{}, gb = needs_grad(b) ? grad_slot(b) : GradSlot{};
    float *da = ga.grad.defined() ? ga.grad.data() : nullptr, *db = gb.grad.defined() ? gb.grad.data() : nullptr;
    const float *pa = a.data(), *pb = b.data(), *pg = g.data();
    const int64_t n = a.numel();
    const bool da_first = ga.first, db_first = gb.first;
    // First contributions keep their bf16 rounding for the products of the layers behind.
    uint16_t* da16 = da ? bf16_values(bf16_image_kept_to_fill(ga.grad, da_first)) : nullptr;
    uint16_t* db16 = db ? bf16_values(bf16_image_kept_to_fill(gb.grad, db_first)) : nullptr;
    // Both gradients in one pass: a, b and g read once, sigmoid(a) computed once.
    constexpr int64_t kChunk = 4096;
#pragma omp parallel for if (n > kParallelMin)
    for (int64_t c = 0; c < n; c += kChunk) {
      const int64_t end = std::min(n, c + kChunk);
      if (da && db) grad_pass<true, true>(pa, pb, pg, da, db, da_first, db_first, c, end);
      else if (da) grad_pass<true, false>(pa, pb, pg, da, db, da_first, db_first, c, end);
      else if (db) grad_pass<false, true>(pa, pb, pg, da, db, da_first, db_first, c, end);
      if (da16) round_to_bf16(da + c, da16 + c, end - c);
      if (db16) round_to_bf16(db + c, db16 + c, end - c);
    }
  });
}

}  // namespace sl
