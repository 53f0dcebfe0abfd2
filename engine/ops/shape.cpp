// Views (reshape, transpose, permute), copies to dense layout, concat, split and slice.
#include <numeric>

#include "engine/ops.h"

namespace sl {

// Strided copy of any view into a dense buffer, iterating the outer dims with an odometer.
static void copy_strided(const float* src, const Shape& shape, const Shape& strides, float* dst) {
  int64_t nd = (int64_t)shape.size();
  int64_t n = shape_numel(shape);
  if (n == 0) return;
  if (nd == 0) {
    dst[0] = src[0];
    return;
  }
  int64_t inner = shape[nd - 1], inner_stride = strides[nd - 1];
  int64_t outer = n / inner;
#pragma omp parallel for if (n > 65536)
  for (int64_t o = 0; o < outer; ++o) {
    int64_t rem = o, off = 0;
    for (int64_t d = nd - 2; d >= 0; --d) {
      off += (rem % shape[d]) * strides[d];
      rem /= shape[d];
    }
    const float* s = src + off;
    float* t = dst + o * inner;
    if (inner_stride == 1)
      for (int64_t i = 0; i < inner; ++i) t[i] = s[i];
    else
      for (int64_t i = 0; i < inner; ++i) t[i] = s[i * inner_stride];
  }
}

// Adds a dense gradient into a strided view's positions (the adjoint of copy_strided).
static void add_strided(const float* src, const Shape& shape, const Shape& strides, float* dst) {
  int64_t nd = (int64_t)shape.size();
  int64_t n = shape_numel(shape);
  if (n == 0) return;
  if (nd == 0) {
    dst[0] += src[0];
    return;
  }
  int64_t inner = shape[nd - 1], inner_stride = strides[nd - 1];
  int64_t outer = n / inner;
  // Distinct outer rows of a non-overlapping view never alias, so rows run in parallel.
#pragma omp parallel for if (n > 65536)
  for (int64_t o = 0; o < outer; ++o) {
    int64_t rem = o, off = 0;
    for (int64_t d = nd - 2; d >= 0; --d) {
      off += (rem % shape[d]) * strides[d];
      rem /= shape[d];
    }
    float* t = dst + off;
    const float* s = src + o * inner;
    for (int64_t i = 0; i < inner; ++i) t[i * inner_stride] += s[i];
  }
}

Tensor Tensor::contiguous() const {
  if (is_contiguous()) return *this;
  Tensor out = Tensor::empty(shape());
  copy_strided(data(), shape(), strides(), out.data());
  Tensor x = *this;
  return record(out, "contiguous", {x}, [x](const Tensor&, const Tensor& g) {
    // The gradient of a view is dense in the view's shape: forward it unchanged.
    float* gx = grad_of(x).data();
    const float* gg = g.data();
    for (int64_t i = 0, n = g.numel(); i < n; ++i) gx[i] += gg[i];
  });
}

Tensor Tensor::reshape(const Shape& new_shape_in) const {
  Shape s = new_shape_in;
  int64_t known = 1, infer = -1;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == -1) {
      SL_CHECK(infer < 0, "reshape: more than one -1 in " + shape_str(new_shape_in));
      infer = (int64_t)i;
    } else {
      known *= s[i];
    }
  }
  if (infer >= 0) s[infer] = known ? numel() / known : 0;
  SL_CHECK(shape_numel(s) == numel(),
           "reshape: cannot view " + shape_str(shape()) + " as " + shape_str(new_shape_in));
  Tensor x = is_contiguous() ? *this : contiguous();
  Tensor out = make_view(x, s, contiguous_strides(s), x.impl()->offset);
  return record(out, "reshape", {x}, [x](const Tensor&, const Tensor& g) {
    float* gx = grad_of(x).data();
    const float* gg = g.data();
    for (int64_t i = 0, n = g.numel(); i < n; ++i) gx[i] += gg[i];
  });
}

Tensor Tensor::permute(const Shape& dims) const {
  int64_t nd = dim();
  SL_CHECK((int64_t)dims.size() == nd, "permute: " + shape_str(dims) + " for a " + std::to_string(nd) + "-d tensor");
  Shape s(nd), st(nd), inv(nd);
  for (int64_t i = 0; i < nd; ++i) {
    int64_t d = dims[i] < 0 ? dims[i] + nd : dims[i];
    SL_CHECK(d >= 0 && d < nd, "permute: bad dimension list " + shape_str(dims));
    s[i] = shape()[d];
    st[i] = strides()[d];
    inv[d] = i;
  }
  Tensor x = *this;
  Tensor out = make_view(x, s, st, impl()->offset);
  return record(out, "permute", {x}, [x, inv](const Tensor& out, const Tensor& g) {
    // g is dense in the permuted order; scatter it back through the inverse permutation.
    Shape gst = contiguous_strides(g.shape()), back(inv.size());
    for (size_t i = 0; i < inv.size(); ++i) back[i] = gst[inv[i]];
    Tensor gx = grad_of(x);
    Tensor tmp = Tensor::empty(x.shape());
    copy_strided(g.data(), x.shape(), back, tmp.data());
    float* d = gx.data();
    const float* t = tmp.data();
    for (int64_t i = 0, n = tmp.numel(); i < n; ++i) d[i] += t[i];
  });
}

Tensor Tensor::transpose(int64_t a, int64_t b) const {
  int64_t nd = dim();
  if (a < 0) a += nd;
  if (b < 0) b += nd;
  Shape dims(nd);
  std::iota(dims.begin(), dims.end(), 0);
  std::swap(dims[a], dims[b]);
  return permute(dims);
}

}  // namespace sl
