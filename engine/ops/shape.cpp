// Views (reshape, transpose, permute), copies to dense layout, concat, split and slice.
#include <algorithm>
#include <numeric>

#include "engine/ops.h"
#include "engine/ops/raw.h"
#include "engine/threads.h"

namespace sl {

// Strided copy (or accumulation) of any view into a dense buffer, outer dims by an odometer.
static void copy_strided(const float* src, const Shape& shape, const Shape& strides, float* dst,
                         bool accumulate = false) {
  int64_t nd = (int64_t)shape.size();
  int64_t n = shape_numel(shape);
  if (n == 0) return;
  if (nd == 0) {
    dst[0] = accumulate ? dst[0] + src[0] : src[0];
    return;
  }
  int64_t inner = shape[nd - 1], inner_stride = strides[nd - 1];
  int64_t outer = n / inner;
#pragma omp parallel for if (n > kParallelMin)
  for (int64_t o = 0; o < outer; ++o) {
    int64_t rem = o, off = 0;
    for (int64_t d = nd - 2; d >= 0; --d) {
      off += (rem % shape[d]) * strides[d];
      rem /= shape[d];
    }
    const float* s = src + off;
    float* t = dst + o * inner;
    if (accumulate)
      for (int64_t i = 0; i < inner; ++i) t[i] += s[i * inner_stride];
    else if (inner_stride == 1)
      for (int64_t i = 0; i < inner; ++i) t[i] = s[i];
    else
      for (int64_t i = 0; i < inner; ++i) t[i] = s[i * inner_stride];
  }
}

// x's gradient += g, a dense gradient of x's shape (or = g, as its first contribution).
static void add_into(const Tensor& x, const Tensor& g) {
  auto [grad, first] = grad_slot(x);
  const float* gg = g.data();
  assign_or_add(grad.data(), g.numel(), first, [gg](int64_t i) { return gg[i]; });
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
#pragma omp parallel for if (n > kParallelMin)
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
    add_into(x, g);
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
    // The first gradient to reach x can be g itself, seen in x's shape: nothing else reads g
    // after this node (the graph frees it), so sharing its storage saves a pass.
    if (!x.impl()->grad) {
      x.impl()->grad = make_view(g, x.shape(), contiguous_strides(x.shape()), g.impl()->offset).impl_ptr();
      return;
    }
    add_into(x, g);
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
    auto [gx, first] = grad_slot(x);
    copy_strided(g.data(), x.shape(), back, gx.data(), /*accumulate=*/!first);
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

static int64_t normalise_dim(const char* op, int64_t dim, int64_t nd) {
  int64_t d = dim < 0 ? dim + nd : dim;
  SL_CHECK(d >= 0 && d < nd, std::string(op) + ": dimension " + std::to_string(dim) + " out of range for a " +
                                 std::to_string(nd) + "-d tensor");
  return d;
}

Tensor slice(const Tensor& x, int64_t dim, int64_t start, int64_t end) {
  int64_t d = normalise_dim("slice", dim, x.dim());
  SL_CHECK(0 <= start && start <= end && end <= x.size(d),
           "slice: range [" + std::to_string(start) + ", " + std::to_string(end) + ") of dimension " +
               std::to_string(d) + " of " + shape_str(x.shape()));
  Shape s = x.shape();
  s[d] = end - start;
  Tensor out = make_view(x, s, x.strides(), x.impl()->offset + start * x.strides()[d]);
  return record(out, "slice", {x}, [x, d, start](const Tensor& out, const Tensor& g) {
    // The slice's positions inside x's dense gradient: x's contiguous strides, shifted by start.
    Tensor gx = grad_of(x);
    Shape st = contiguous_strides(x.shape());
    add_strided(g.data(), out.shape(), st, gx.data() + start * st[d]);
  });
}

std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t dim) {
  int64_t d = normalise_dim("split", dim, x.dim());
  int64_t total = std::accumulate(sizes.begin(), sizes.end(), int64_t{0});
  SL_CHECK(total == x.size(d), "split: sizes " + shape_str(sizes) + " do not add up to dimension " +
                                   std::to_string(d) + " of " + shape_str(x.shape()));
  std::vector<Tensor> parts;
  int64_t start = 0;
  for (int64_t n : sizes) {
    parts.push_back(slice(x, d, start, start + n));
    start += n;
  }
  return parts;
}

Tensor concat(const std::vector<Tensor>& xs_in, int64_t dim) {
  SL_CHECK(!xs_in.empty(), "concat: no tensors given");
  int64_t d = normalise_dim("concat", dim, xs_in[0].dim());
  Shape s = xs_in[0].shape();
  s[d] = 0;
  std::vector<Tensor> xs;
  for (const Tensor& x : xs_in) {
    Shape expect = s;
    expect[d] = x.dim() == (int64_t)s.size() ? x.size(d) : -1;
    SL_CHECK(x.shape() == expect, "concat: " + shape_str(x.shape()) + " does not match " +
                                      shape_str(xs_in[0].shape()) + " outside dimension " + std::to_string(d));
    s[d] += x.size(d);
    xs.push_back(x.contiguous());
  }
  // Row-major, each input fills a block of `width` floats in every one of `outer` output rows.
  int64_t outer = shape_numel(Shape(s.begin(), s.begin() + d));
  int64_t row = shape_numel(Shape(s.begin() + d, s.end()));
  Tensor out = Tensor::empty(s);
  int64_t col = 0;
  std::vector<int64_t> cols;
  for (const Tensor& x : xs) {
    int64_t width = outer ? x.numel() / outer : 0;
    const float* xd = x.data();
    float* od = out.data() + col;
#pragma omp parallel for if (x.numel() > kParallelMin)
    for (int64_t o = 0; o < outer; ++o)
      std::copy(xd + o * width, xd + (o + 1) * width, od + o * row);
    cols.push_back(col);
    col += width;
  }
  return record(out, "concat", xs, [xs, cols, outer, row](const Tensor&, const Tensor& g) {
    for (size_t k = 0; k < xs.size(); ++k) {
      if (!needs_grad(xs[k])) continue;
      int64_t width = outer ? xs[k].numel() / outer : 0;
      float* gx = grad_of(xs[k]).data();
      const float* gg = g.data() + cols[k];
#pragma omp parallel for if (xs[k].numel() > kParallelMin)
      for (int64_t o = 0; o < outer; ++o)
        for (int64_t i = 0; i < width; ++i) gx[o * width + i] += gg[o * row + i];
    }
  });
}

}  // namespace sl
