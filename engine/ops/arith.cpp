// Elementwise arithmetic with NumPy broadcasting. Both operands are walked through one layout:
// the output shape with each operand's strides over it (0 along broadcast dims), after
// coalescing dims that are contiguous for both operands. Same-shape operands collapse to one
// dim and [N, D] + [D] to two, so the common cases run as plain dense loops.
#include <omp.h>

#include <algorithm>
#include <vector>

#include "engine/ops.h"
#include "engine/ops/raw.h"
#include "engine/threads.h"

namespace sl {

namespace {

struct Layout {
  Shape out_shape;      // the broadcast output shape, as the user sees it
  Shape dims;           // coalesced dims of the output (at least one)
  Shape stride_a, stride_b;  // each operand's strides over `dims`
  int64_t numel = 0;
  int64_t inner() const { return dims.back(); }
};

Layout broadcast_layout(const Shape& a, const Shape& b, const char* op) {
  int64_t nd = (int64_t)std::max(a.size(), b.size());
  Layout L;
  L.out_shape.resize(nd);
  Shape sa(nd, 0), sb(nd, 0);
  Shape ca = contiguous_strides(a), cb = contiguous_strides(b);
  for (int64_t k = 0; k < nd; ++k) {
    int64_t ka = k - (nd - (int64_t)a.size()), kb = k - (nd - (int64_t)b.size());
    int64_t da = ka >= 0 ? a[ka] : 1, db = kb >= 0 ? b[kb] : 1;
    SL_CHECK(da == db || da == 1 || db == 1, std::string(op) + ": cannot broadcast " + shape_str(a) +
                                                 " with " + shape_str(b));
    L.out_shape[k] = da == 1 ? db : da;
    if (da != 1) sa[k] = ca[ka];
    if (db != 1) sb[k] = cb[kb];
  }
  L.numel = shape_numel(L.out_shape);
  // Coalesce: drop size-1 dims, merge a dim into the previous one when both operands step
  // through them as one dim.
  for (int64_t k = 0; k < nd; ++k) {
    int64_t n = L.out_shape[k];
    if (n == 1) continue;
    if (!L.dims.empty() && L.stride_a.back() == sa[k] * n && L.stride_b.back() == sb[k] * n) {
      L.dims.back() *= n;
      L.stride_a.back() = sa[k];
      L.stride_b.back() = sb[k];
    } else {
      L.dims.push_back(n);
      L.stride_a.push_back(sa[k]);
      L.stride_b.push_back(sb[k]);
    }
  }
  if (L.dims.empty()) {  // every dim is 1: a single element
    L.dims = {1};
    L.stride_a = L.stride_b = {0};
  }
  return L;
}

// Calls f(i, ia, ib) for every output element i in [e0, e1), with ia and ib the matching
// offsets into a and b. The inner loop is specialised on the inner strides so the compiler
// sees dense (or constant) accesses and vectorises.
template <class F>
inline void walk(const Layout& L, int64_t e0, int64_t e1, F&& f) {
  if (e0 >= e1) return;  // also keeps an empty output's zero-sized inner dim out of the division
  int64_t nd = (int64_t)L.dims.size(), n = L.inner();
  int64_t ta = L.stride_a.back(), tb = L.stride_b.back();
  for (int64_t r = e0 / n; r * n < e1; ++r) {
    int64_t rem = r, oa = 0, ob = 0;
    for (int64_t d = nd - 2; d >= 0; --d) {
      int64_t idx = rem % L.dims[d];
      rem /= L.dims[d];
      oa += idx * L.stride_a[d];
      ob += idx * L.stride_b[d];
    }
    int64_t base = r * n, j0 = std::max<int64_t>(e0 - base, 0), j1 = std::min(e1 - base, n);
    if (ta == 1 && tb == 1)
      for (int64_t j = j0; j < j1; ++j) f(base + j, oa + j, ob + j);
    else if (ta == 1 && tb == 0)
      for (int64_t j = j0; j < j1; ++j) f(base + j, oa + j, ob);
    else if (ta == 0 && tb == 1)
      for (int64_t j = j0; j < j1; ++j) f(base + j, oa, ob + j);
    else
      for (int64_t j = j0; j < j1; ++j) f(base + j, oa + j * ta, ob + j * tb);
  }
}

// walk() over all output elements in chunks shared among threads; f must only write to
// element i's own slot.
template <class F>
void walk_parallel(const Layout& L, F&& f) {
  constexpr int64_t kChunk = 8192;
  int64_t chunks = (L.numel + kChunk - 1) / kChunk;
#pragma omp parallel for if (L.numel > kParallelMin)
  for (int64_t c = 0; c < chunks; ++c) walk(L, c * kChunk, std::min(L.numel, (c + 1) * kChunk), f);
}

// grad[x offset] += contrib(i, ia, ib) over every output element, for x = a (use_a) or b (=, as
// x's first contribution, where each gradient element gets one output element).
// Where x is broadcast, several output elements land on one gradient element: threads then
// sum into private buffers that are added up at the end.
template <class C>
void accumulate(const Layout& L, bool use_a, const Tensor& x, C&& contrib) {
  auto into = [&](float* dst) {
    return [&, dst](int64_t i, int64_t ia, int64_t ib) { dst[use_a ? ia : ib] += contrib(i, ia, ib); };
  };
  if (x.numel() == L.numel) {
    auto [grad, first] = grad_slot(x);
    float* gx = grad.data();
    if (first)
      walk_parallel(L, [&](int64_t i, int64_t ia, int64_t ib) { gx[use_a ? ia : ib] = contrib(i, ia, ib); });
    else
      walk_parallel(L, into(gx));
    return;
  }
  float* gx = grad_of(x).data();
  int64_t nx = x.numel();
  int nt = L.numel > kParallelMin ? omp_get_max_threads() : 1;
  if (nt == 1) {
    walk(L, 0, L.numel, into(gx));
    return;
  }
  std::vector<float> partial((size_t)nt * nx, 0.f);
#pragma omp parallel num_threads(nt)
  {
    int t = omp_get_thread_num(), T = omp_get_num_threads();
    walk(L, L.numel * t / T, L.numel * (t + 1) / T, into(partial.data() + (size_t)t * nx));
  }
#pragma omp parallel for if (nx * nt > kParallelMin)
  for (int64_t k = 0; k < nx; ++k)
    for (int t = 0; t < nt; ++t) gx[k] += partial[(size_t)t * nx + k];
}

// out = op(a, b) with broadcasting; `backward(L, a, b, out, g)` accumulates the input gradients.
template <class Op, class Backward>
Tensor binary(const Tensor& a_in, const Tensor& b_in, const char* name, Op op, Backward backward) {
  Tensor a = a_in.contiguous(), b = b_in.contiguous();
  Layout L = broadcast_layout(a.shape(), b.shape(), name);
  Tensor out = Tensor::empty(L.out_shape);
  const float *pa = a.data(), *pb = b.data();
  float* po = out.data();
  walk_parallel(L, [&](int64_t i, int64_t ia, int64_t ib) { po[i] = op(pa[ia], pb[ib]); });
  return record(out, name, {a, b}, [a, b, L, backward](const Tensor& out, const Tensor& g) {
    backward(L, a, b, out, g);
  });
}

// d(a + b) = g for both: a takes g itself as its gradient where it can (adopt_grad), b a copy.
void add_backward(const Layout& L, const Tensor& a, const Tensor& b, const Tensor&, const Tensor& g) {
  const float* pg = g.data();
  auto pass = [pg](int64_t i, int64_t, int64_t) { return pg[i]; };
  if (needs_grad(a) && !adopt_grad(a, g)) accumulate(L, true, a, pass);
  if (needs_grad(b)) accumulate(L, false, b, pass);
}

}  // namespace

Tensor add(const Tensor& a, const Tensor& b) {
  return binary(a, b, "add", [](float x, float y) { return x + y; }, add_backward);
}

Tensor record_add(Tensor sum, const Tensor& a, const Tensor& b) {
  SL_CHECK(a.shape() == b.shape() && a.shape() == sum.shape(),
           "record_add: operands " + shape_str(a.shape()) + " and " + shape_str(b.shape()) + " for a sum " +
               shape_str(sum.shape()) + "; all three must have one shape");
  const Layout L = broadcast_layout(a.shape(), b.shape(), "add");
  return record(sum, "add", {a, b}, [a, b, L](const Tensor& out, const Tensor& g) { add_backward(L, a, b, out, g); });
}

Tensor sub(const Tensor& a, const Tensor& b) {
  return binary(a, b, "sub", [](float x, float y) { return x - y; },
                [](const Layout& L, const Tensor& a, const Tensor& b, const Tensor&, const Tensor& g) {
                  const float* pg = g.data();
                  if (needs_grad(a)) accumulate(L, true, a, [pg](int64_t i, int64_t, int64_t) { return pg[i]; });
                  if (needs_grad(b)) accumulate(L, false, b, [pg](int64_t i, int64_t, int64_t) { return -pg[i]; });
                });
}

Tensor mul(const Tensor& a, const Tensor& b) {
  return binary(a, b, "mul", [](float x, float y) { return x * y; },
                [](const Layout& L, const Tensor& a, const Tensor& b, const Tensor&, const Tensor& g) {
                  const float *pg = g.data(), *pa = a.data(), *pb = b.data();
                  // d(ab)/da = b, d(ab)/db = a
                  if (needs_grad(a))
                    accumulate(L, true, a, [=](int64_t i, int64_t, int64_t ib) { return pg[i] * pb[ib]; });
                  if (needs_grad(b))
                    accumulate(L, false, b, [=](int64_t i, int64_t ia, int64_t) { return pg[i] * pa[ia]; });
                });
}

Tensor div(const Tensor& a, const Tensor& b) {
  return binary(a, b, "div", [](float x, float y) { return x / y; },
                [](const Layout& L, const Tensor& a, const Tensor& b, const Tensor& out, const Tensor& g) {
                  const float *pg = g.data(), *pb = b.data(), *po = out.data();
                  // d(a/b)/da = 1/b, d(a/b)/db = -a/b^2 = -out/b
                  if (needs_grad(a))
                    accumulate(L, true, a, [=](int64_t i, int64_t, int64_t ib) { return pg[i] / pb[ib]; });
                  if (needs_grad(b))
                    accumulate(L, false, b,
                               [=](int64_t i, int64_t, int64_t ib) { return -pg[i] * po[i] / pb[ib]; });
                });
}

// The scalar forms: out = a * s + c, whose gradient is g * s.
static Tensor affine_scalar(const Tensor& a_in, float s, float c, const char* name) {
  Tensor a = a_in.contiguous();
  Tensor out = Tensor::empty(a.shape());
  const float* pa = a.data();
  float* po = out.data();
  int64_t n = a.numel();
#pragma omp parallel for if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) po[i] = pa[i] * s + c;
  return record(out, name, {a}, [a, s](const Tensor&, const Tensor& g) {
    float* ga = grad_of(a).data();
    const float* pg = g.data();
    int64_t n = g.numel();
#pragma omp parallel for if (n > kParallelMin)
    for (int64_t i = 0; i < n; ++i) ga[i] += pg[i] * s;
  });
}

Tensor scale(const Tensor& a, float s) { return affine_scalar(a, s, 0.f, "scale"); }
Tensor add_scalar(const Tensor& a, float s) { return affine_scalar(a, 1.f, s, "add_scalar"); }

}  // namespace sl
