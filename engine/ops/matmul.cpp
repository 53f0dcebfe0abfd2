// Matrix products on oneDNN's matmul primitive. Operands are passed with their own strides,
// so transposed views (B^T, A^T in the backward pass) cost no copy. In bf16 precision
// (engine/precision.h) the operands are rounded to bf16 in those same layouts.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <unordered_map>

#include "engine/dnnl_context.h"
#include "engine/ops.h"
#include "engine/ops/raw.h"
#include "engine/precision.h"

namespace sl {

using dnnl::memory;

// A view without autograd history: the raw operand of one oneDNN call.
static Tensor view(const Tensor& t, const Shape& shape, const Shape& strides) {
  return make_view(t, shape, strides, t.impl()->offset);
}

// The operand itself, outside the graph: helpers below must not record autograd nodes.
static Tensor raw(const Tensor& t) { return t.detach(); }

// t with its last two dimensions swapped (a strided view, no copy).
Tensor mT(const Tensor& t) {
  Shape s = t.shape(), st = t.strides();
  int64_t n = t.dim();
  std::swap(s[n - 1], s[n - 2]);
  std::swap(st[n - 1], st[n - 2]);
  return view(t, s, st);
}

// t[..., M, K] as a 2-D [rows, K] view when its leading dims are laid out as one run of rows
// (always true for dense tensors); an undefined tensor otherwise.
static Tensor as_rows(const Tensor& t) {
  int64_t n = t.dim();
  const Shape& s = t.shape();
  const Shape& st = t.strides();
  int64_t rows = 1;
  for (int64_t d = 0; d < n - 1; ++d) rows *= s[d];
  for (int64_t d = 0; d + 1 < n - 1; ++d)
    if (s[d] != 1 && st[d] != st[d + 1] * s[d + 1]) return Tensor();
  return view(t, {rows, s[n - 1]}, {st[n - 2], st[n - 1]});
}

// Prepends size-1 dimensions up to rank n (oneDNN broadcasts size-1 batch dims).
static Tensor with_rank(const Tensor& t, int64_t n) {
  Shape s = t.shape(), st = t.strides();
  int64_t whole = s[0] * st[0];  // any stride serves a size-1 dim; this one reads naturally
  s.insert(s.begin(), n - t.dim(), 1);
  st.insert(st.begin(), n - t.dim(), whole);
  return view(t, s, st);
}

static std::string layout_key(const Tensor& t) { return shape_str(t.shape()) + shape_str(t.strides()); }

// The oneDNN description of t's layout with elements of type dt.
static memory::desc desc(const Tensor& t, memory::data_type dt) { return memory::desc(t.shape(), dt, t.strides()); }

// The oneDNN primitive for c (+)= a @ b (+ bias[1, N]) in exactly these layouts, with a and b of
// type `in` (c and bias are always f32); an empty primitive when oneDNN offers only its slow
// reference kernel for them.
static dnnl::primitive& primitive_for(const Tensor& a, const Tensor& b, const Tensor& c, memory::data_type in,
                                      bool bias, bool accumulate, float alpha) {
  std::string key = "matmul" + layout_key(a) + layout_key(b) + layout_key(c) + (bias ? "+bias" : "") +
                    (accumulate ? "+=" : "=") + (in == memory::data_type::bf16 ? "bf16" : "f32");
  if (alpha != 1.f) key += std::string(1, '*') + std::to_string(alpha);
  return dnnl_ctx::cached(key, [&]() -> dnnl::primitive {
    memory::desc bias_md;
    if (bias) {
      Shape s(c.dim(), 1);
      s.back() = c.size(-1);
      bias_md = memory::desc(s, memory::data_type::f32, contiguous_strides(s));
    }
    dnnl::primitive_attr attr;
    if (alpha != 1.f) attr.set_output_scales(0, {alpha});
    if (accumulate) {
      dnnl::post_ops po;
      po.append_sum(1.f);  // dst = 1 * dst + a @ b: gradients accumulate without a temporary
      attr.set_post_ops(po);
    }
    dnnl::matmul::desc d(desc(a, in), desc(b, in), bias_md, desc(c, memory::data_type::f32));
    dnnl::matmul::primitive_desc pd(d, attr, dnnl_ctx::engine(), /*allow_empty=*/true);
    if (!pd || std::string(pd.impl_info_str()).find("ref") != std::string::npos) return {};
    return dnnl::matmul(pd);
  });
}

// x rounded to the nearest bfloat16, ties to even (the upper half of the rounded float).
static uint16_t to_bf16(float x) {
  uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  if (std::isnan(x)) return uint16_t((u >> 16) | 0x40);  // stays a NaN (rounding could make it inf)
  return uint16_t((u + 0x7fff + ((u >> 16) & 1)) >> 16);
}

// Elements from t's first to its last, gaps included.
static int64_t span(const Tensor& t) {
  int64_t n = 1;
  for (int64_t d = 0; d < t.dim(); ++d) n += (t.size(d) - 1) * t.strides()[d];
  return n;
}

Bf16Image bf16_image(const Tensor& t) {
  if (matmul_precision() != MatmulPrecision::bf16 || t.numel() == 0) return {};
  const int64_t n = span(t);
  Bf16Image image{t.data(), n, Storage::allocate((n + 1) / 2)};  // two bf16 per float slot
  const float* x = t.data();
  uint16_t* y = reinterpret_cast<uint16_t*>(image.bf16->data);
#pragma omp parallel for simd if (n > 32768)
  for (int64_t i = 0; i < n; ++i) y[i] = to_bf16(x[i]);
  return image;
}

void gemm(Tensor a, Tensor b, Tensor c, const float* bias, bool accumulate, float alpha, const Bf16Image& a16,
          const Bf16Image& b16) {
  if (c.numel() == 0) return;
  if (a.size(-1) == 0) {  // an empty sum
    if (!accumulate) fill(c.data(), c.numel(), 0.f);
    return;
  }
  Tensor cc = c;
  if (b.dim() == 2 && a.dim() > 2) {
    // A matrix shared by every batch: one large 2-D product over all rows when a allows it.
    Tensor rows = as_rows(a);
    if (rows.defined()) {
      a = rows;
      cc = as_rows(c);
    } else {
      b = with_rank(b, a.dim());
    }
  }
  const bool bf16 = matmul_precision() == MatmulPrecision::bf16;
  const memory::data_type in = bf16 ? memory::data_type::bf16 : memory::data_type::f32;
  dnnl::primitive* p = &primitive_for(a, b, cc, in, bias, accumulate, alpha);
  if (!*p) {
    // A layout oneDNN has no fast kernel for: pack both operands densely.
    a = a.contiguous();
    b = b.contiguous();
    p = &primitive_for(a, b, cc, in, bias, accumulate, alpha);
  }
  SL_CHECK(*p, "matmul: oneDNN has no kernel for " + shape_str(a.shape()) + " @ " + shape_str(b.shape()));
  // a and b as oneDNN reads them: themselves, or bf16 images (the given ones where they cover
  // the operand, else made here and alive until the product is done).
  auto image_of = [](const Tensor& t, const Bf16Image& given) {
    const bool covers = given.bf16 && t.data() >= given.from && t.data() + span(t) <= given.from + given.n;
    return covers ? given : bf16_image(t);
  };
  const Bf16Image a_image = bf16 ? image_of(a, a16) : Bf16Image{}, b_image = bf16 ? image_of(b, b16) : Bf16Image{};
  auto operand = [](const Tensor& t, const Bf16Image& image) {
    if (!image.bf16) return memory(desc(t, memory::data_type::f32), dnnl_ctx::engine(), const_cast<float*>(t.data()));
    uint16_t* at = reinterpret_cast<uint16_t*>(image.bf16->data) + (t.data() - image.from);
    return memory(desc(t, memory::data_type::bf16), dnnl_ctx::engine(), at);
  };
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, operand(a, a_image)},
                                       {DNNL_ARG_WEIGHTS, operand(b, b_image)},
                                       {DNNL_ARG_DST, memory(desc(cc, memory::data_type::f32), dnnl_ctx::engine(), cc.data())}};
  if (bias) {
    Shape s(cc.dim(), 1);
    s.back() = cc.size(-1);
    args.emplace(DNNL_ARG_BIAS, memory(memory::desc(s, memory::data_type::f32, contiguous_strides(s)),
                                       dnnl_ctx::engine(), const_cast<float*>(bias)));
  }
  p->execute(dnnl_ctx::stream(), args);
  dnnl_ctx::stream().wait();
}

Tensor matmul(const Tensor& a, const Tensor& b) {
  SL_CHECK(a.dim() >= 2 && b.dim() >= 2, "matmul: operands need at least 2 dims, got " + shape_str(a.shape()) +
                                             " @ " + shape_str(b.shape()));
  SL_CHECK(a.size(-1) == b.size(-2), "matmul: inner dimensions differ in " + shape_str(a.shape()) + " @ " +
                                         shape_str(b.shape()));
  Shape batch(a.shape().begin(), a.shape().end() - 2);
  SL_CHECK(b.dim() == 2 || Shape(b.shape().begin(), b.shape().end() - 2) == batch,
           "matmul: b's batch dims must equal a's or be absent, got " + shape_str(a.shape()) + " @ " +
               shape_str(b.shape()));
  Shape out_shape = batch;
  out_shape.push_back(a.size(-2));
  out_shape.push_back(b.size(-1));
  Tensor out = Tensor::empty(out_shape);
  gemm(raw(a), raw(b), out, nullptr, false);
  return record(out, "matmul", {a, b}, [a, b](const Tensor&, const Tensor& g) {
    if (needs_grad(a)) gemm(raw(g), mT(raw(b)), grad_of(a), nullptr, true);  // dA = dC @ B^T
    if (!needs_grad(b)) return;
    if (b.dim() == a.dim()) {
      gemm(mT(raw(a)), raw(g), grad_of(b), nullptr, true);  // dB = A^T @ dC
    } else {
      // b is shared across the batch: dB sums A^T @ dC over it, i.e. one product of all rows.
      Tensor rows = as_rows(raw(a));
      if (!rows.defined()) rows = as_rows(raw(a).contiguous());
      gemm(mT(rows), as_rows(raw(g)), grad_of(b), nullptr, true);
    }
  });
}

Tensor linear(const Tensor& x, const Tensor& w, const Tensor& bias) {
  SL_CHECK(w.dim() == 2 && x.dim() >= 1 && x.size(-1) == w.size(1),
           "linear: x " + shape_str(x.shape()) + " does not match weight [out, in] " + shape_str(w.shape()));
  int64_t out_f = w.size(0), in_f = w.size(1);
  SL_CHECK(!bias.defined() || bias.shape() == Shape{out_f},
           "linear: bias " + shape_str(bias.shape()) + " for weight " + shape_str(w.shape()) + ", expected [" +
               std::to_string(out_f) + "]");
  Shape out_shape = x.shape();
  out_shape.back() = out_f;
  Tensor out = Tensor::empty(out_shape);
  int64_t rows = x.numel() / std::max<int64_t>(in_f, 1);
  auto flat = [rows](const Tensor& t) {  // t[..., F] as dense [rows, F]
    Tensor c = t.is_contiguous() ? t : t.contiguous();
    return view(c, {rows, t.size(-1)}, {t.size(-1), 1});
  };
  Tensor b = bias.defined() ? raw(bias).contiguous() : Tensor();
  gemm(flat(raw(x)), mT(raw(w)), flat(out), b.defined() ? b.data() : nullptr, false);  // x @ W^T + bias
  return record(out, "linear", {x, w, bias}, [x, w, bias, flat](const Tensor&, const Tensor& g) {
    Tensor gf = flat(raw(g));
    const Bf16Image g16 = bf16_image(gf);  // dY is an operand of both products: round it once
    if (needs_grad(x)) gemm(gf, raw(w), flat(grad_of(x)), nullptr, true, 1.f, g16);          // dX = dY @ W
    if (needs_grad(w)) gemm(mT(gf), flat(raw(x)), grad_of(w), nullptr, true, 1.f, g16);      // dW = dY^T @ X
    if (needs_grad(bias)) {
      // dbias = column sums of dY; threads own disjoint column blocks and sweep all rows.
      float* gb = grad_of(bias).data();
      const float* gd = gf.data();
      int64_t n_rows = gf.size(0), n = gf.size(1), block = 16;
#pragma omp parallel for if (gf.numel() > 65536)
      for (int64_t j0 = 0; j0 < n; j0 += block) {
        int64_t j1 = std::min(n, j0 + block);
        for (int64_t i = 0; i < n_rows; ++i)
          for (int64_t j = j0; j < j1; ++j) gb[j] += gd[i * n + j];
      }
    }
  });
}

}  // namespace sl
