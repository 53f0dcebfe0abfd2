// gemm in bf16 precision: known answers against an fp32 product of bf16-rounded operands.
#include <catch2/catch.hpp>

#include <cmath>

#include "engine/ops/raw.h"
#include "engine/precision.h"
#include "tests/bf16_here.h"
#include "tests/gradcheck.h"

using namespace sl;

namespace {

// Sets a matmul precision for one scope: the setting is process-wide and other tests expect f32.
struct PrecisionScope {
  explicit PrecisionScope(MatmulPrecision p) { set_matmul_precision(p); }
  ~PrecisionScope() { set_matmul_precision(MatmulPrecision::f32); }
};

// x rounded to 8 significant bits, ties to even (nearbyint's default mode): bf16, computed
// arithmetically rather than by the bit trick the engine uses.
float bf16_round(float x) {
  int e;
  double m = std::frexp((double)x, &e);  // x = m * 2^e, 0.5 <= |m| < 1
  return (float)std::ldexp(std::nearbyint(std::ldexp(m, 8)), e - 8);
}

struct Expected {
  std::vector<float> value;  // c0 + alpha * round(a) @ round(b) + bias, accumulated in double
  std::vector<float> scale;  // sum over k of |alpha * a_ik * b_kj|: the size of each dot product
};

// a[..., M, K] @ b[..., K, N] (b 2-D or batched like a) on bf16-rounded values.
Expected reference(const Tensor& a, const Tensor& b, const std::vector<float>& c0, const std::vector<float>& bias,
                   float alpha) {
  std::vector<float> av = a.to_vector(), bv = b.to_vector();
  for (float& x : av) x = bf16_round(x);
  for (float& x : bv) x = bf16_round(x);
  int64_t m = a.size(-2), k = a.size(-1), n = b.size(-1), batch = a.numel() / (m * k);
  Expected e{c0, std::vector<float>(c0.size())};
  for (int64_t p = 0; p < batch; ++p) {
    const float* bp = bv.data() + (b.dim() == 2 ? 0 : p * k * n);
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) {
        double s = 0, mag = 0;
        for (int64_t l = 0; l < k; ++l) {
          double t = (double)av[(p * m + i) * k + l] * bp[l * n + j];
          s += t;
          mag += std::abs(t);
        }
        const int64_t o = (p * m + i) * n + j;
        e.value[o] += (float)(alpha * s) + (bias.empty() ? 0.f : bias[j]);
        e.scale[o] = (float)(std::abs(alpha) * mag);
      }
  }
  return e;
}

// The worst |c - expected| relative to the size of its dot product.
double worst_error(const Tensor& c, const Expected& e) {
  std::vector<float> cv = c.to_vector();
  REQUIRE(cv.size() == e.value.size());
  double worst = 0;
  for (size_t i = 0; i < cv.size(); ++i) worst = std::max(worst, std::abs((double)cv[i] - e.value[i]) / e.scale[i]);
  return worst;
}

// gemm(a, b, c = c0) in the current precision; returns its worst error against the bf16 reference.
double gemm_error(const Tensor& a, const Tensor& b, bool accumulate, bool with_bias, float alpha = 1.f) {
  Shape out(a.shape().begin(), a.shape().end() - 1);
  out.push_back(b.size(-1));
  Tensor c = accumulate ? testing::randn(out, 99) : Tensor::full(out, 7.f);  // non-accumulating overwrites
  std::vector<float> c0 = accumulate ? c.to_vector() : std::vector<float>(c.numel(), 0.f);
  Tensor bias = testing::randn({b.size(-1)}, 98);
  std::vector<float> bv = with_bias ? bias.to_vector() : std::vector<float>{};
  gemm(a, b, c, with_bias ? bias.data() : nullptr, accumulate, alpha);
  return worst_error(c, reference(a, b, c0, bv, alpha));
}

}  // namespace

TEST_CASE("bf16 gemm rounds its operands to nearest even", "[matmul][bf16]") {
  if (!testing::bf16_here()) return;
  PrecisionScope bf16(MatmulPrecision::bf16);
  const float u = std::ldexp(1.f, -8);  // half a bf16 step at 1
  // 1 + u ties between 1 and 1 + 2u: even is 1. 1 + 3u ties between 1 + 2u and 1 + 4u: even is 1 + 4u.
  // Just above a tie rounds up; -x rounds like x.
  std::vector<float> in{1 + u, 1 + 3 * u, 1 + u + std::ldexp(1.f, -20), -(1 + 3 * u), 3.14159265f};
  std::vector<float> want{1, 1 + 4 * u, 1 + 2 * u, -(1 + 4 * u), 3.140625f};
  Tensor a = Tensor::from({5, 1}, in), one = Tensor::ones({1, 1}), c = Tensor::zeros({5, 1});
  gemm(a, one, c, nullptr, false);
  CHECK(c.to_vector() == want);
  for (size_t i = 0; i < in.size(); ++i) CHECK(bf16_round(in[i]) == want[i]);  // the test's own rounding agrees
}

TEST_CASE("bf16 gemm equals an fp32 product of bf16-rounded operands", "[matmul][bf16]") {
  if (!testing::bf16_here()) return;
  // fp32 accumulation of exact bf16 products: within 1e-5 of each dot product's size, while
  // fp32 operands differ from the rounded ones by about 4e-3 (2^-8) of it.
  const double tol = 1e-5;
  Tensor a = testing::randn({3, 5, 7}, 1), b = testing::randn({7, 9}, 2);
  Tensor a4 = testing::randn({2, 3, 5, 7}, 3), b4 = testing::randn({2, 3, 7, 9}, 4);
  Tensor at = mT(testing::randn({3, 7, 5}, 5)), bt = mT(testing::randn({9, 7}, 6));
  Tensor g = testing::randn({11, 5}, 10), x = testing::randn({11, 7}, 11);
  Tensor ap = testing::randn({5, 3, 7}, 7).transpose(0, 1).detach();  // rows not one run
  // The fused attention's layout: [B, T, H, Dh] seen as [B, H, T, Dh], and its keys transposed.
  Tensor q = testing::randn({2, 5, 3, 7}, 8), k = testing::randn({2, 5, 3, 7}, 9);
  Tensor qh = make_view(q, {2, 3, 5, 7}, {105, 7, 21, 1}, 0), kh = make_view(k, {2, 3, 5, 7}, {105, 7, 21, 1}, 0);
  {
    PrecisionScope bf16(MatmulPrecision::bf16);
    CHECK(gemm_error(a, b, false, false) < tol);
    CHECK(gemm_error(a, b, true, true) < tol);  // accumulate into c, plus bias
    CHECK(gemm_error(a4, b4, true, false, 0.37f) < tol);
    CHECK(gemm_error(at, bt, false, true) < tol);
    CHECK(gemm_error(mT(g), x, true, false) < tol);  // dW = dY^T X accumulating into a gradient
    CHECK(gemm_error(ap, b, true, false) < tol);
    CHECK(gemm_error(qh, mT(kh), false, false, 0.5f) < tol);
    CHECK(gemm_error(mT(qh), kh, true, false) < tol);
  }
  // The same products in f32 miss the bf16 reference by far more: the check above can fail.
  CHECK(gemm_error(a, b, true, true) > 1e-4);
  CHECK(gemm_error(qh, mT(kh), false, false, 0.5f) > 1e-4);
}

TEST_CASE("a bf16 image serves every view inside it and is ignored outside", "[matmul][bf16]") {
  if (!testing::bf16_here()) return;
  PrecisionScope bf16(MatmulPrecision::bf16);
  // The fused attention's blocks: query positions 4..8 against key positions 2..5 of [B, T, H, Dh].
  Tensor q = testing::randn({2, 9, 3, 7}, 1), k = testing::randn({2, 9, 3, 7}, 2);
  Tensor qb = make_view(q, {2, 3, 5, 7}, {189, 7, 21, 1}, 4 * 21), kb = make_view(k, {2, 3, 4, 7}, {189, 7, 21, 1}, 2 * 21);
  const Bf16Image q16 = bf16_image(q), k16 = bf16_image(k);
  Tensor fresh = Tensor::zeros({2, 3, 5, 4}), other = Tensor::zeros({2, 3, 5, 4}), imaged = Tensor::zeros({2, 3, 5, 4});
  gemm(qb, mT(kb), fresh, nullptr, false);
  gemm(qb, mT(kb), other, nullptr, false, 1.f, k16, q16);  // images of other storage: converted afresh
  CHECK(other.to_vector() == fresh.to_vector());
  // Doubling q after its image was made (exact in bf16): a product that reads the image is half
  // of one that converts q again.
  for (int64_t i = 0; i < q.numel(); ++i) q.data()[i] *= 2;
  gemm(qb, mT(kb), fresh, nullptr, false);
  gemm(qb, mT(kb), imaged, nullptr, false, 1.f, q16, k16);
  std::vector<float> f = fresh.to_vector(), m = imaged.to_vector();
  for (size_t i = 0; i < f.size(); ++i) REQUIRE(m[i] == f[i] / 2);
}

TEST_CASE("a kept bf16 image is made once for an op's output and read by gemm", "[matmul][bf16]") {
  if (!testing::bf16_here()) return;
  PrecisionScope bf16(MatmulPrecision::bf16);
  Tensor leaf = testing::randn({6, 5}, 1).set_requires_grad();
  Tensor x = scale(leaf, 2.f);  // an op's output in the recorded graph: its values are final
  CHECK(bf16_image_kept(x).bf16 == bf16_image_kept(x.reshape({5, 6})).bf16);  // one image per storage
  CHECK(bf16_image_kept(leaf).bf16 != bf16_image_kept(leaf).bf16);  // a leaf may change: never kept
  // Doubling x after its image was kept (exact in bf16) leaves a product that reads it unchanged.
  Tensor w = testing::randn({5, 3}, 2), before = Tensor::zeros({6, 3}), after = Tensor::zeros({6, 3});
  gemm(x.detach(), w, before, nullptr, false);
  for (int64_t i = 0; i < x.numel(); ++i) x.data()[i] *= 2;
  gemm(x.detach(), w, after, nullptr, false);
  CHECK(after.to_vector() == before.to_vector());
  Tensor y = scale(leaf, 2.f), fresh = Tensor::zeros({6, 3});  // not kept: read as it is now
  for (int64_t i = 0; i < y.numel(); ++i) y.data()[i] *= 2;
  gemm(y.detach(), w, fresh, nullptr, false);
  for (int64_t i = 0; i < fresh.numel(); ++i) REQUIRE(fresh.data()[i] == 2 * before.data()[i]);
}

namespace {

// Whether t's storage keeps a bf16 image, and if so that it is the rounding of its values now.
enum class Kept { None, Current, Stale };
Kept kept_image(const Tensor& t) {
  const Storage& s = *t.impl()->storage;
  if (!s.bf16) return Kept::None;
  std::vector<uint16_t> now(s.size);
  round_to_bf16(s.data, now.data(), s.size);
  const uint16_t* image = reinterpret_cast<const uint16_t*>(s.bf16->data);
  return std::equal(now.begin(), now.end(), image) ? Kept::Current : Kept::Stale;
}

// x itself, through an op whose backward reports whether the gradient reaching it keeps an image.
Tensor probe(const Tensor& x, Kept* seen) {
  Tensor out = x.detach().clone();
  return record(out, "probe", {x}, [x, seen](const Tensor&, const Tensor& g) {
    *seen = kept_image(g);
    Tensor gx = grad_of(x);
    for (int64_t i = 0; i < gx.numel(); ++i) gx.data()[i] += g.data()[i];
  });
}

}  // namespace

TEST_CASE("ops that write a product's operand keep its bf16 rounding, and only while it holds", "[matmul][bf16]") {
  if (!testing::bf16_here()) return;
  PrecisionScope bf16(MatmulPrecision::bf16);
  Tensor a = testing::randn({4, 6, 2, 8}, 1).set_requires_grad(), b = testing::randn({4, 6, 2, 8}, 2).set_requires_grad();
  Tensor w = testing::rand_uniform({8}, 3, 0.5f, 1.5f).set_requires_grad();
  // Outputs in the recorded graph: rounded as they are written.
  Tensor s = swiglu(a), n = rms_norm(a, w), r = rope(a, 1e4f);
  for (const Tensor* t : {&s, &n, &r}) CHECK(kept_image(*t) == Kept::Current);
  {
    NoGrad ng;  // outside a recorded graph a caller may change them: nothing kept
    for (const Tensor& t : {swiglu(a), rms_norm(a, w), rope(a, 1e4f)}) CHECK(kept_image(t) == Kept::None);
  }
  // Gradients: swiglu's and rope's first contributions keep theirs for the products behind, as
  // the gradient reaches them (a probe op's backward sees it); a second contribution (mul's,
  // added before or after swiglu's) leaves no stale image.
  Kept seen = Kept::Stale;
  backward(swiglu(probe(a, &seen)), testing::randn({4, 6, 2, 4}, 4));
  CHECK(seen == Kept::Current);
  seen = Kept::Stale;
  backward(rope(probe(a, &seen), 1e4f), testing::randn(a.shape(), 5));
  CHECK(seen == Kept::Current);
  for (bool swiglu_first : {true, false}) {
    seen = Kept::Stale;
    Tensor p = probe(a, &seen);
    Tensor half = slice(mul(p, b), -1, 0, 4);  // a second contribution to p's gradient
    backward(swiglu_first ? add(half, swiglu(p)) : add(swiglu(p), half), testing::randn({4, 6, 2, 4}, 6));
    CHECK(seen != Kept::Stale);
  }
}
