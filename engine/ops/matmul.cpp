// Matrix products on oneDNN's matmul primitive. Operands are passed with their own strides,
// so transposed views (B^T, A^T in the backward pass) cost no copy. In bf16 precision
// (engine/precision.h) the operands are rounded to bf16 in those same layouts.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <immintrin.h>
#include <memory>
#include <string>
#include <unordered_map>

#include "engine/dnnl_context.h"
#include "engine/ops.h"
#include "engine/ops/raw.h"
#include "engine/precision.h"
#include "engine/threads.h"

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

// An operand as oneDNN reads it: its layout and where its elements (f32 or bf16) lie.
struct Operand {
  Shape shape, strides;
  void* data;
  std::shared_ptr<Storage> keep;  // a bf16 copy made for this product
};

static std::string layout_key(const Shape& shape, const Shape& strides) { return shape_str(shape) + shape_str(strides); }

// The oneDNN primitive for c (+)= a @ b (+ bias[1, N]) in exactly these layouts, with a and b of
// type `in` (c and bias are always f32); an empty primitive when oneDNN offers only its slow
// reference kernel for them.
static dnnl::primitive& primitive_for(const Operand& a, const Operand& b, const Tensor& c, memory::data_type in,
                                      bool bias, bool accumulate, float alpha) {
  std::string key = "matmul" + layout_key(a.shape, a.strides) + layout_key(b.shape, b.strides) +
                    layout_key(c.shape(), c.strides()) + (bias ? "+bias" : "") + (accumulate ? "+=" : "=") +
                    (in == memory::data_type::bf16 ? "bf16" : "f32");
  if (alpha != 1.f) key += std::string(1, '*') + std::to_string(alpha);
  return dnnl_ctx::cached(key, [&]() -> dnnl::primitive {
    memory::desc bias_md;
    if (bias) {
      Shape s(c.dim(), 1);
      s.back() = c.size(-1);
      bias_md = memory::desc(s, memory::data_type::f32, contiguous_strides(s));
    }
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);  // its size is then known: see gemm
    if (alpha != 1.f) attr.set_output_scales(0, {alpha});
    if (accumulate) {
      dnnl::post_ops po;
      po.append_sum(1.f);  // dst = 1 * dst + a @ b: gradients accumulate without a temporary
      attr.set_post_ops(po);
    }
    dnnl::matmul::desc d(memory::desc(a.shape, in, a.strides), memory::desc(b.shape, in, b.strides), bias_md,
                         memory::desc(c.shape(), memory::data_type::f32, c.strides()));
    dnnl::matmul::primitive_desc pd(d, attr, dnnl_ctx::engine(), /*allow_empty=*/true);
    if (!pd || std::string(pd.impl_info_str()).find("ref") != std::string::npos) return {};
    return dnnl::matmul(pd);
  });
}

// The memory a matmul primitive needs besides its operands.
static memory::desc scratchpad_of(const dnnl::primitive& p) {
  const dnnl_memory_desc_t* md = dnnl_primitive_desc_query_md(p.get_primitive_desc(), dnnl_query_scratchpad_md, 0);
  return md ? memory::desc(*md) : memory::desc();
}

// One scratchpad buffer for every product, grown to the largest need (as oneDNN's own library
// mode would keep it). Outside the tensor pool, so that it does not count as activations.
static void* scratchpad(size_t bytes) {
  static std::unique_ptr<void, decltype(&std::free)> buffer(nullptr, &std::free);
  static size_t size = 0;
  if (bytes > size) {
    buffer.reset(std::aligned_alloc(64, (bytes + 63) / 64 * 64));
    SL_CHECK(buffer, "out of memory allocating a " + std::to_string(bytes) + "-byte matmul scratchpad");
    size = bytes;
  }
  return buffer.get();
}

Tensor rows_of(const Tensor& t, int64_t r0, int64_t r1) {
  return make_view(t, {r1 - r0, t.size(1)}, t.strides(), t.impl()->offset + r0 * t.strides()[0]);
}

// Largest scratchpad a product may ask for before gemm splits it (see there).
constexpr size_t kScratchpadMax = size_t(16) << 20;

// Elements from t's first to its last, gaps included.
static int64_t span(const Tensor& t) {
  int64_t n = 1;
  for (int64_t d = 0; d < t.dim(); ++d) n += (t.size(d) - 1) * t.strides()[d];
  return n;
}

#ifdef __AVX512BF16__
void round_to_bf16(const float* x, uint16_t* y, int64_t n) {
  // The CPU's own conversion, one instruction per 16 floats where the bit trick below takes two
  // dozen; also to nearest even with NaN kept, it flushes denormals to 0, as the AVX512-BF16 and
  // AMX products read them anyway.
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = n - i >= 16 ? __mmask16(0xffff) : __mmask16((1u << (n - i)) - 1);
    const __m256bh r = _mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(m, x + i));
    _mm256_mask_storeu_epi16(y + i, m, (__m256i)r);
  }
}
#else
// x rounded to the nearest bfloat16, ties to even (the upper half of the rounded float).
static uint16_t to_bf16(float x) {
  uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  if (std::isnan(x)) return uint16_t((u >> 16) | 0x40);  // stays a NaN (rounding could make it inf)
  return uint16_t((u + 0x7fff + ((u >> 16) & 1)) >> 16);
}

void round_to_bf16(const float* x, uint16_t* y, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) y[i] = to_bf16(x[i]);
}
#endif

// x[0, n) rounded to bf16, two per float slot of the returned storage.
static std::shared_ptr<Storage> rounded(const float* x, int64_t n) {
  auto out = Storage::allocate((n + 1) / 2);
  uint16_t* y = reinterpret_cast<uint16_t*>(out->data);
  constexpr int64_t kChunk = 16384;
#pragma omp parallel for if (n > kParallelMin)
  for (int64_t i = 0; i < n; i += kChunk) round_to_bf16(x + i, y + i, std::min(kChunk, n - i));
  return out;
}

// Images are made only for bf16 products, and only of something.
static bool wants_image(const Tensor& t) { return matmul_precision() == MatmulPrecision::bf16 && t.numel() > 0; }

Bf16Image bf16_image_to_fill(const Tensor& t) {
  if (!wants_image(t)) return {};
  return {t.data(), t.numel(), Storage::allocate((t.numel() + 1) / 2)};
}

Bf16Image bf16_image_kept_to_fill(const Tensor& t, bool keep) {
  Storage& s = *t.impl()->storage;
  if (!keep || !wants_image(t) || t.data() != s.data || t.numel() != s.size || !t.is_contiguous()) return {};
  s.bf16 = Storage::allocate((s.size + 1) / 2);
  return {s.data, s.size, s.bf16};
}

Bf16Image bf16_image(const Tensor& t) {
  if (!wants_image(t)) return {};
  const Storage& s = *t.impl()->storage;
  if (s.bf16) return {s.data, s.size, s.bf16};  // kept: the rounding of these very values
  return {t.data(), span(t), rounded(t.data(), span(t))};
}

Bf16Image bf16_image_kept(const Tensor& t) {
  if (!wants_image(t)) return {};
  if (!t.impl()->grad_fn) return bf16_image(t);
  Storage& s = *t.impl()->storage;
  if (!s.bf16) s.bf16 = rounded(s.data, s.size);
  return {s.data, s.size, s.bf16};
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
  // t as oneDNN reads it: itself, or its bf16 image (a given or kept one where it covers t, else
  // made here and alive until the product is done). (A dense copy of a transposed A would let
  // oneDNN's AMX kernel run dW = dY^T X faster, but within a step the copy costs more than that.)
  auto operand = [bf16](const Tensor& t, const Bf16Image& given) -> Operand {
    if (!bf16) return {t.shape(), t.strides(), const_cast<float*>(t.data()), nullptr};
    const Storage& s = *t.impl()->storage;
    for (const Bf16Image& image : {given, Bf16Image{s.data, s.size, s.bf16}})
      if (image.bf16 && t.data() >= image.from && t.data() + span(t) <= image.from + image.n)
        return {t.shape(), t.strides(), reinterpret_cast<uint16_t*>(image.bf16->data) + (t.data() - image.from), nullptr};
    auto image = rounded(t.data(), span(t));
    return {t.shape(), t.strides(), image->data, image};
  };
  Operand A = operand(a, a16), B = operand(b, b16);
  dnnl::primitive* p = &primitive_for(A, B, cc, in, bias, accumulate, alpha);
  if (!*p) {
    // A layout oneDNN has no fast kernel for: pack both operands densely.
    a = a.contiguous();
    b = b.contiguous();
    A = operand(a, {});
    B = operand(b, {});
    p = &primitive_for(A, B, cc, in, bias, accumulate, alpha);
  }
  SL_CHECK(*p, "matmul: oneDNN has no kernel for " + shape_str(a.shape()) + " @ " + shape_str(b.shape()));
  const memory::desc scratch = scratchpad_of(*p);
  if (cc.dim() == 2 && scratch.get_size() > kScratchpadMax && cc.size(0) >= 128) {
    // When c has fewer blocks than there are threads, oneDNN splits a long K among them, each
    // summing into its own copy of c: hundreds of MB for a wide output layer's dW at 16
    // threads, resident from then on. Halves of c's rows need half as much; the operands'
    // images made here serve both halves.
    auto image = [](const Tensor& t, const Operand& o, const Bf16Image& given) {
      return o.keep ? Bf16Image{t.data(), span(t), o.keep} : given;
    };
    const Bf16Image a_image = image(a, A, a16), b_image = image(b, B, b16);
    const int64_t m = cc.size(0), h = m / 2;
    gemm(rows_of(a, 0, h), b, rows_of(cc, 0, h), bias, accumulate, alpha, a_image, b_image);
    gemm(rows_of(a, h, m), b, rows_of(cc, h, m), bias, accumulate, alpha, a_image, b_image);
    return;
  }
  auto mem = [in](const Operand& o) { return memory(memory::desc(o.shape, in, o.strides), dnnl_ctx::engine(), o.data); };
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, mem(A)},
                                       {DNNL_ARG_WEIGHTS, mem(B)},
                                       {DNNL_ARG_DST, memory(memory::desc(cc.shape(), memory::data_type::f32, cc.strides()),
                                                              dnnl_ctx::engine(), cc.data())}};
  if (scratch.get_size()) args.emplace(DNNL_ARG_SCRATCHPAD, memory(scratch, dnnl_ctx::engine(), scratchpad(scratch.get_size())));
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
    if (needs_grad(a)) {
      auto [ga, first] = grad_slot(a);
      gemm(raw(g), mT(raw(b)), ga, nullptr, !first);  // dA = dC @ B^T
    }
    if (!needs_grad(b)) return;
    if (b.dim() == a.dim()) {
      auto [gb, first] = grad_slot(b);
      gemm(mT(raw(a)), raw(g), gb, nullptr, !first);  // dB = A^T @ dC
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
  // x @ W^T + bias; x's bf16 image is kept for the other products that read x, dW's included
  gemm(flat(raw(x)), mT(raw(w)), flat(out), b.defined() ? b.data() : nullptr, false, 1.f, bf16_image_kept(x));
  return record(out, "linear", {x, w, bias}, [x, w, bias, flat](const Tensor&, const Tensor& g) {
    Tensor gf = flat(raw(g));
    const Bf16Image g16 = bf16_image(gf);  // dY is an operand of both products: round it once
    if (needs_grad(x)) {
      auto [gx, first] = grad_slot(x);
      gemm(gf, raw(w), flat(gx), nullptr, !first, 1.f, g16);  // dX = dY @ W
    }
    if (needs_grad(w)) gemm(mT(gf), flat(raw(x)), grad_of(w), nullptr, true, 1.f, g16);  // dW = dY^T @ X
    if (needs_grad(bias)) {
      // dbias = column sums of dY; threads own disjoint column blocks and sweep all rows.
      float* gb = grad_of(bias).data();
      const float* gd = gf.data();
      int64_t n_rows = gf.size(0), n = gf.size(1), block = 16;
#pragma omp parallel for if (gf.numel() > kParallelMin)
      for (int64_t j0 = 0; j0 < n; j0 += block) {
        int64_t j1 = std::min(n, j0 + block);
        for (int64_t i = 0; i < n_rows; ++i)
          for (int64_t j = j0; j < j1; ++j) gb[j] += gd[i * n + j];
      }
    }
  });
}

}  // namespace sl
