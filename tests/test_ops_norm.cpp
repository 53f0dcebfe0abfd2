#include <catch2/catch.hpp>

#include <cmath>

#include "tests/gradcheck.h"

using namespace sl;

namespace {

// Layer norm written with the primitive ops, as an independent reference.
Tensor layer_norm_reference(const Tensor& x, const Tensor& w, const Tensor& b, float eps) {
  Tensor xc = x - mean(x, -1, true);
  Tensor rstd = Tensor::scalar(1.f) / sl::sqrt(add_scalar(mean(square(xc), -1, true), eps));
  return xc * rstd * w + b;
}

}  // namespace

TEST_CASE("layer_norm rows have mean 0 and variance 1; rms_norm rows have mean square 1", "[norm]") {
  const int64_t R = 15, D = 37;
  Tensor x = add_scalar(testing::randn({3, 5, D}, 1, 3.f), 2.f);
  std::vector<float> ln = layer_norm(x, Tensor(), Tensor()).to_vector();
  std::vector<float> rms = rms_norm(x, Tensor()).to_vector();
  for (int64_t r = 0; r < R; ++r) {
    double m = 0, v = 0, ms = 0;
    for (int64_t i = 0; i < D; ++i) m += ln[r * D + i] / D;
    for (int64_t i = 0; i < D; ++i) v += (ln[r * D + i] - m) * (ln[r * D + i] - m) / D;
    for (int64_t i = 0; i < D; ++i) ms += rms[r * D + i] * rms[r * D + i] / D;
    REQUIRE(std::abs(m) < 1e-5);
    REQUIRE(v == Approx(1.0).epsilon(1e-4));
    REQUIRE(ms == Approx(1.0).epsilon(1e-4));
  }
  // rms_norm divides by the root mean square without centring
  std::vector<float> r1 = rms_norm(Tensor::from({1, 2}, {3, 4}), Tensor(), 0.f).to_vector();
  REQUIRE(r1[0] == Approx(3 / std::sqrt(12.5f)));
  REQUIRE(r1[1] == Approx(4 / std::sqrt(12.5f)));
}

TEST_CASE("norm weight and bias are a per-feature affine map", "[norm]") {
  Tensor x = testing::randn({4, 9}, 2);
  Tensor w = testing::randn({9}, 3), b = testing::randn({9}, 4);
  std::vector<float> plain = layer_norm(x, Tensor(), Tensor()).to_vector();
  std::vector<float> affine = layer_norm(x, w, b).to_vector();
  std::vector<float> rplain = rms_norm(x, Tensor()).to_vector(), raffine = rms_norm(x, w).to_vector();
  for (int64_t i = 0; i < 36; ++i) {
    REQUIRE(affine[i] == Approx(plain[i] * w.data()[i % 9] + b.data()[i % 9]).margin(1e-5));
    REQUIRE(raffine[i] == Approx(rplain[i] * w.data()[i % 9]).margin(1e-5));
  }
  REQUIRE_THROWS_WITH(layer_norm(x, testing::randn({8}, 5), Tensor()), Catch::Contains("[8]") && Catch::Contains("[9]"));
  REQUIRE_THROWS_AS(rms_norm(x, testing::randn({9, 1}, 5)), Error);
}

TEST_CASE("rms_norm and layer_norm gradients match finite differences", "[norm][gradcheck]") {
  Tensor x = testing::randn({3, 5, 7}, 6), w = testing::randn({7}, 7), b = testing::randn({7}, 8);
  // fresh copies per check: gradients accumulate into leaves
  auto err = [](auto f, std::vector<Tensor> in) {
    for (auto& t : in) t = t.clone();
    return testing::gradcheck(f, in);
  };
  REQUIRE(err([](const std::vector<Tensor>& in) { return rms_norm(in[0], in[1]); }, {x, w}) < 1e-3);
  REQUIRE(err([](const std::vector<Tensor>& in) { return rms_norm(in[0], Tensor()); }, {x}) < 1e-3);
  REQUIRE(err([](const std::vector<Tensor>& in) { return layer_norm(in[0], in[1], in[2]); }, {x, w, b}) < 1e-3);
  REQUIRE(err([](const std::vector<Tensor>& in) { return layer_norm(in[0], Tensor(), Tensor()); }, {x}) < 1e-3);
  REQUIRE(err([](const std::vector<Tensor>& in) { return layer_norm(in[0], in[1], Tensor()); }, {x, w}) < 1e-3);
  // a strided input, normalised over what was its first dim
  REQUIRE(err([](const std::vector<Tensor>& in) { return layer_norm(in[0].transpose(0, 2), in[1], in[2]); },
              {testing::randn({3, 5, 7}, 9), testing::randn({3}, 10), testing::randn({3}, 11)}) < 1e-3);
}

TEST_CASE("layer_norm on a large input (threaded path) matches the composite of primitive ops", "[norm]") {
  const int64_t R = 211, D = 163;  // 34393 elements
  Tensor x1 = testing::randn({R, D}, 12), w1 = testing::randn({D}, 13), b1 = testing::randn({D}, 14);
  Tensor x2 = x1.clone(), w2 = w1.clone(), b2 = b1.clone();
  for (Tensor* t : {&x1, &w1, &b1, &x2, &w2, &b2}) t->set_requires_grad();
  Tensor seed = testing::randn({R, D}, 15);
  Tensor y1 = layer_norm(x1, w1, b1, 1e-5f), y2 = layer_norm_reference(x2, w2, b2, 1e-5f);
  backward(y1, seed);
  backward(y2, seed);
  auto max_diff = [](const Tensor& a, const Tensor& b) {
    double m = 0;
    for (int64_t i = 0; i < a.numel(); ++i) m = std::max(m, (double)std::abs(a.data()[i] - b.data()[i]));
    return m;
  };
  REQUIRE(max_diff(y1, y2) < 1e-4);
  REQUIRE(max_diff(x1.grad(), x2.grad()) < 1e-3);
  REQUIRE(max_diff(w1.grad(), w2.grad()) < 1e-2);  // sums over 211 rows
  REQUIRE(max_diff(b1.grad(), b2.grad()) < 1e-3);
}

TEST_CASE("add_rms_norm and add_layer_norm are the add and the norm, values and gradients", "[norm][gradcheck]") {
  // Both outputs feed the loss, as in a pre-norm block: the sum goes on down the residual stream.
  for (bool rms : {true, false}) {
    for (int64_t R : {6, 400}) {  // 400 x 97 rows: the threaded path
      const int64_t D = 97;
      Tensor h = testing::randn({2, R / 2, D}, 31), y = testing::randn({2, R / 2, D}, 32);
      Tensor w = testing::randn({D}, 33), b = testing::randn({D}, 34);
      Tensor ws = testing::randn({2, R / 2, D}, 35), wn = testing::randn({2, R / 2, D}, 36);
      auto loss = [&](const Tensor& sum_, const Tensor& normed) { return sum(add(mul(sum_, ws), mul(normed, wn))); };
      std::vector<Tensor> fused{h.clone(), y.clone(), w.clone(), b.clone()}, plain{h.clone(), y.clone(), w.clone(), b.clone()};
      for (auto& t : fused) t.set_requires_grad();
      for (auto& t : plain) t.set_requires_grad();
      ResidualNorm f = rms ? add_rms_norm(fused[0], fused[1], fused[2])
                           : add_layer_norm(fused[0], fused[1], fused[2], fused[3]);
      Tensor s = add(plain[0], plain[1]);
      Tensor n = rms ? rms_norm(s, plain[2]) : layer_norm(s, plain[2], plain[3]);
      REQUIRE(f.sum.to_vector() == s.to_vector());  // one computation, not merely close
      REQUIRE(f.normed.to_vector() == n.to_vector());
      loss(f.sum, f.normed).backward();
      loss(s, n).backward();
      for (int k = 0; k < (rms ? 3 : 4); ++k) {
        std::vector<float> gf = fused[k].grad().to_vector(), gp = plain[k].grad().to_vector();
        for (size_t i = 0; i < gf.size(); ++i) REQUIRE(gf[i] == Approx(gp[i]).margin(1e-4));
      }
    }
    auto f = [rms](const std::vector<Tensor>& in) {
      ResidualNorm o = rms ? add_rms_norm(in[0], in[1], in[2]) : add_layer_norm(in[0], in[1], in[2], in[3]);
      return add(o.normed, scale(o.sum, 0.5f));
    };
    std::vector<Tensor> in{testing::randn({3, 7}, 37), testing::randn({3, 7}, 38), testing::randn({7}, 39),
                           testing::randn({7}, 40)};
    if (rms) in.pop_back();
    REQUIRE(testing::gradcheck(f, in) < 1e-3);
  }
  REQUIRE_THROWS_WITH(add_rms_norm(testing::randn({2, 3}, 1), testing::randn({3, 2}, 2), Tensor()),
                      Catch::Contains("[3, 2]") && Catch::Contains("one shape"));
}
