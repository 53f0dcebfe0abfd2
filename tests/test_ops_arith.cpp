#include <catch2/catch.hpp>

#include <cmath>

#include "tests/gradcheck.h"

using namespace sl;

namespace {

using BinaryOp = Tensor (*)(const Tensor&, const Tensor&);

// Operands away from 0 so that div and its gradient stay well conditioned.
Tensor nonzero(const Shape& s, uint64_t seed) {
  Tensor t = testing::rand_uniform(s, seed, 0.5f, 2.f);
  Tensor sign = testing::randn(s, seed + 100);
  for (int64_t i = 0; i < t.numel(); ++i) t.data()[i] *= sign.data()[i] < 0 ? -1.f : 1.f;
  return t;
}

}  // namespace

TEST_CASE("add/sub/mul/div compute broadcast values", "[arith]") {
  Tensor a = Tensor::from({2, 3}, {1, 2, 3, 4, 5, 6});
  Tensor b = Tensor::from({3}, {10, 20, 30});
  REQUIRE(add(a, b).to_vector() == std::vector<float>{11, 22, 33, 14, 25, 36});
  REQUIRE(sub(a, b).to_vector() == std::vector<float>{-9, -18, -27, -6, -15, -24});
  REQUIRE((b - a).to_vector() == std::vector<float>{9, 18, 27, 6, 15, 24});
  Tensor col = Tensor::from({2, 1}, {2, 3});
  Tensor p = mul(col, b);  // [2,1] * [3] -> [2,3]
  REQUIRE(p.shape() == Shape{2, 3});
  REQUIRE(p.to_vector() == std::vector<float>{20, 40, 60, 30, 60, 90});
  REQUIRE(div(a, col).to_vector() == std::vector<float>{0.5f, 1, 1.5f, 4.f / 3, 5.f / 3, 2});
  Tensor s = Tensor::scalar(2.f);
  REQUIRE((a * s).to_vector() == std::vector<float>{2, 4, 6, 8, 10, 12});
  REQUIRE((s / Tensor::scalar(4.f)).shape() == Shape{});
  REQUIRE((s / Tensor::scalar(4.f)).item() == 0.5f);
  // [3,1,7] * [5,1] -> [3,5,7]: element (i,j,k) = a[i,0,k] * b[j,0]
  Tensor x = testing::randn({3, 1, 7}, 1), y = testing::randn({5, 1}, 2);
  Tensor z = mul(x, y);
  REQUIRE(z.shape() == Shape{3, 5, 7});
  REQUIRE(z.data()[(2 * 5 + 3) * 7 + 4] == x.data()[2 * 7 + 4] * y.data()[3]);
}

TEST_CASE("incompatible broadcast shapes are rejected with both shapes named", "[arith]") {
  Tensor a = Tensor::zeros({3, 5}), b = Tensor::zeros({4});
  REQUIRE_THROWS_AS(add(a, b), Error);
  REQUIRE_THROWS_WITH(mul(a, b), Catch::Contains("[3, 5]") && Catch::Contains("[4]"));
}

TEST_CASE("add/sub/mul/div gradients reduce over broadcast dims", "[arith][gradcheck]") {
  std::vector<std::pair<Shape, Shape>> cases = {
      {{3, 5, 7}, {3, 5, 7}}, {{3, 5, 7}, {7}},    {{7}, {3, 5, 7}}, {{3, 1, 7}, {5, 1}},
      {{5, 1}, {1, 7}},       {{3, 5, 7}, {}},     {{}, {3, 5}},     {{}, {}},
      {{3, 5, 7}, {3, 5, 1}}, {{1, 5, 1}, {3, 1, 7}}};
  std::vector<std::pair<const char*, BinaryOp>> ops = {{"add", add}, {"sub", sub}, {"mul", mul}, {"div", div}};
  for (auto& [name, op] : ops)
    for (auto& [sa, sb] : cases) {
      INFO(name << " " << shape_str(sa) << " with " << shape_str(sb));
      double err = testing::gradcheck([op = op](const std::vector<Tensor>& in) { return op(in[0], in[1]); },
                                      {nonzero(sa, 3), nonzero(sb, 4)});
      REQUIRE(err < 1e-3);
    }
}

TEST_CASE("binary ops accept strided views", "[arith][gradcheck]") {
  double err = testing::gradcheck(
      [](const std::vector<Tensor>& in) { return mul(in[0].transpose(0, 1), in[1]); },
      {testing::randn({5, 3}, 5), testing::randn({3, 1}, 6)});
  REQUIRE(err < 1e-3);
}

TEST_CASE("large broadcast gradients (threaded path) match direct sums", "[arith]") {
  // ([131, 257] * [257] + [131, 1]) * scalar: more elements than the parallel threshold.
  const int64_t N = 131, D = 257;
  Tensor a = testing::randn({N, D}, 7).set_requires_grad();
  Tensor b = testing::randn({D}, 8).set_requires_grad();
  Tensor c = testing::randn({N, 1}, 9).set_requires_grad();
  Tensor s = Tensor::scalar(-1.3f).set_requires_grad();
  Tensor out = mul(add(mul(a, b), c), s);
  Tensor w = testing::randn({N, D}, 10);
  backward(out, w);
  const float *pa = a.data(), *pb = b.data(), *pc = c.data(), *pw = w.data(), *po = out.data();
  const float sv = s.item();
  double worst = 0, gs = 0;
  for (int64_t n = 0; n < N; ++n) {
    double gc = 0;
    for (int64_t d = 0; d < D; ++d) {
      int64_t i = n * D + d;
      worst = std::max(worst, (double)std::abs(po[i] - (pa[i] * pb[d] + pc[n]) * sv));
      worst = std::max(worst, (double)std::abs(a.grad().data()[i] - pw[i] * sv * pb[d]));
      gc += pw[i] * sv;
      gs += (double)pw[i] * (pa[i] * pb[d] + pc[n]);
    }
    worst = std::max(worst, std::abs(c.grad().data()[n] - gc));
  }
  for (int64_t d = 0; d < D; ++d) {
    double gb = 0;
    for (int64_t n = 0; n < N; ++n) gb += (double)pw[n * D + d] * sv * pa[n * D + d];
    worst = std::max(worst, std::abs(b.grad().data()[d] - gb));
  }
  REQUIRE(worst < 1e-3);
  REQUIRE(s.grad().item() == Approx(gs).epsilon(1e-4));
}

TEST_CASE("scale and add_scalar", "[arith][gradcheck]") {
  Tensor a = Tensor::from({3}, {1, -2, 4});
  REQUIRE(scale(a, 0.5f).to_vector() == std::vector<float>{0.5f, -1, 2});
  REQUIRE((a * 3.f).to_vector() == std::vector<float>{3, -6, 12});
  REQUIRE(add_scalar(a, 1.5f).to_vector() == std::vector<float>{2.5f, -0.5f, 5.5f});
  auto f = [](const std::vector<Tensor>& in) { return add_scalar(scale(in[0], -1.7f), 0.3f); };
  REQUIRE(testing::gradcheck(f, {testing::randn({3, 5, 7}, 11)}) < 1e-3);
  REQUIRE(testing::gradcheck([](const std::vector<Tensor>& in) { return scale(in[0].transpose(0, 2), 2.f); },
                             {testing::randn({3, 5, 7}, 12)}) < 1e-3);
}

TEST_CASE("sum and mean over all elements", "[reduce]") {
  Tensor x = Tensor::from({2, 3}, {1, 2, 3, 4, 5, 6});
  REQUIRE(sum(x).shape() == Shape{});
  REQUIRE(sum(x).item() == 21.f);
  REQUIRE(mean(x).item() == Approx(3.5f));
  REQUIRE(testing::gradcheck([](const std::vector<Tensor>& in) { return sum(in[0]); },
                             {testing::randn({3, 5, 7}, 13)}) < 1e-3);
  REQUIRE(testing::gradcheck([](const std::vector<Tensor>& in) { return mean(in[0].transpose(1, 2)); },
                             {testing::randn({3, 5, 7}, 14)}) < 1e-3);
}

TEST_CASE("sum and mean over one dim, with and without keepdim", "[reduce]") {
  Tensor x = Tensor::from({2, 3}, {1, 2, 3, 4, 5, 6});
  REQUIRE(sum(x, 0).shape() == Shape{3});
  REQUIRE(sum(x, 0).to_vector() == std::vector<float>{5, 7, 9});
  REQUIRE(sum(x, 1, true).shape() == Shape{2, 1});
  REQUIRE(sum(x, -1, true).to_vector() == std::vector<float>{6, 15});
  REQUIRE(mean(x, 1).to_vector() == std::vector<float>{2, 5});
  REQUIRE(mean(x, 0, true).shape() == Shape{1, 3});
  REQUIRE_THROWS_AS(sum(x, 2), Error);
  for (int64_t d : {0, 1, 2, -1})
    for (bool keep : {false, true}) {
      INFO("dim " << d << " keepdim " << keep);
      // fresh inputs per check: gradients accumulate into leaves
      REQUIRE(testing::gradcheck([d, keep](const std::vector<Tensor>& in) { return sum(in[0], d, keep); },
                                 {testing::randn({3, 5, 7}, 15)}) < 1e-3);
      REQUIRE(testing::gradcheck([d, keep](const std::vector<Tensor>& in) { return mean(in[0], d, keep); },
                                 {testing::randn({3, 5, 7}, 15)}) < 1e-3);
    }
}

TEST_CASE("sum over the leading dim of a large tensor (threaded path)", "[reduce]") {
  const int64_t N = 301, D = 131;
  Tensor x = testing::randn({N, D}, 16);
  std::vector<float> s = sum(x, 0).to_vector();
  double worst = 0;
  for (int64_t d = 0; d < D; ++d) {
    double ref = 0;
    for (int64_t n = 0; n < N; ++n) ref += x.data()[n * D + d];
    worst = std::max(worst, std::abs(s[d] - ref));
  }
  REQUIRE(worst < 1e-3);
}

TEST_CASE("all_finite finds one NaN or infinity anywhere, in small and threaded tensors", "[reduce]") {
  for (int64_t n : {7, 100003}) {
    Tensor x = testing::randn({n}, 17);
    x.data()[n / 2] = 3e38f;  // large but finite: its x * 0 is 0
    REQUIRE(all_finite(x));
    for (float bad : {NAN, INFINITY, -INFINITY})
      for (int64_t at : {int64_t(0), n / 3, n - 1}) {
        const float keep = x.data()[at];
        x.data()[at] = bad;
        REQUIRE_FALSE(all_finite(x));
        x.data()[at] = keep;
      }
    REQUIRE(all_finite(x));
  }
  Tensor m = testing::randn({3, 5}, 18);
  m.data()[7] = NAN;
  REQUIRE_FALSE(all_finite(m.transpose(0, 1)));  // a strided view is read through its copy
}
