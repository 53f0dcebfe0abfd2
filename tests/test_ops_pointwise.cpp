#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <functional>

#include "engine/ops/raw.h"
#include "tests/gradcheck.h"

using namespace sl;

namespace {

using Unary = std::function<Tensor(const Tensor&)>;

float at(const Unary& f, float x) { return f(Tensor::from({1}, {x})).item(); }

// Inputs whose magnitude is in [0.2, 2]: clear of the kinks of relu and elu at 0.
Tensor away_from_zero(const Shape& s, uint64_t seed) {
  Tensor t = testing::rand_uniform(s, seed, 0.2f, 2.f);
  Tensor sign = testing::randn(s, seed + 100);
  for (int64_t i = 0; i < t.numel(); ++i) t.data()[i] *= sign.data()[i] < 0 ? -1.f : 1.f;
  return t;
}

}  // namespace

TEST_CASE("pointwise functions match known values", "[pointwise]") {
  REQUIRE(at(relu, -1.5f) == 0.f);
  REQUIRE(at(relu, 2.5f) == 2.5f);
  REQUIRE(at(gelu, 1.f) == Approx(0.8413447f).epsilon(1e-5));
  REQUIRE(at(gelu, -1.f) == Approx(-0.1586553f).epsilon(1e-5));
  REQUIRE(at(gelu_tanh, 1.f) == Approx(0.8411920f).epsilon(1e-5));
  REQUIRE(at(silu, 1.f) == Approx(0.7310586f).epsilon(1e-5));
  REQUIRE(at(sigmoid, 0.f) == Approx(0.5f));
  REQUIRE(at(sigmoid, 2.f) == Approx(0.8807971f).epsilon(1e-5));
  REQUIRE(at([](const Tensor& x) { return elu(x); }, -1.f) == Approx(-0.6321206f).epsilon(1e-5));
  REQUIRE(at([](const Tensor& x) { return elu(x, 0.5f); }, -1.f) == Approx(-0.3160603f).epsilon(1e-5));
  REQUIRE(at([](const Tensor& x) { return elu(x, 0.5f); }, 3.f) == Approx(3.f));
  REQUIRE(at(sl::tanh, 0.5f) == Approx(0.4621172f).epsilon(1e-5));
  REQUIRE(at(sl::exp, 1.f) == Approx(2.7182818f).epsilon(1e-5));
  REQUIRE(at(sl::log, 2.7182818f) == Approx(1.f).epsilon(1e-5));
  REQUIRE(at(square, -3.f) == Approx(9.f));
  REQUIRE(at(sl::sqrt, 4.f) == Approx(2.f));
}

TEST_CASE("pointwise functions keep shape and read strided views", "[pointwise]") {
  Tensor x = testing::randn({3, 5, 7}, 1);
  Tensor y = sl::exp(x.transpose(0, 2));
  REQUIRE(y.shape() == Shape{7, 5, 3});
  REQUIRE(y.data()[(4 * 5 + 2) * 3 + 1] == Approx(std::exp(x.data()[(1 * 5 + 2) * 7 + 4])));
}

TEST_CASE("pointwise gradients match finite differences", "[pointwise][gradcheck]") {
  std::vector<std::pair<const char*, Unary>> smooth = {
      {"gelu", gelu},         {"gelu_tanh", gelu_tanh}, {"silu", silu},     {"sigmoid", sigmoid},
      {"tanh", sl::tanh},     {"exp", sl::exp},         {"square", square},
      {"elu(1)", [](const Tensor& x) { return elu(x); }}};
  std::vector<std::pair<const char*, Unary>> kinked = {
      {"relu", relu}, {"elu(0.5)", [](const Tensor& x) { return elu(x, 0.5f); }},
      {"elu(2)", [](const Tensor& x) { return elu(x, 2.f); }}};
  std::vector<std::pair<const char*, Unary>> positive = {{"log", sl::log}, {"sqrt", sl::sqrt}};
  auto check = [](const char* name, const Unary& f, const Tensor& x) {
    INFO(name);
    REQUIRE(testing::gradcheck([f](const std::vector<Tensor>& in) { return f(in[0]); }, {x}) < 1e-3);
    // the same through a transposed view (contiguous() first, gradient routed back)
    REQUIRE(testing::gradcheck([f](const std::vector<Tensor>& in) { return f(in[0].transpose(0, 2)); },
                               {x.clone()}) < 1e-3);
  };
  for (auto& [name, f] : smooth) check(name, f, testing::randn({3, 5, 7}, 2));
  for (auto& [name, f] : kinked) check(name, f, away_from_zero({3, 5, 7}, 3));
  for (auto& [name, f] : positive) check(name, f, testing::rand_uniform({3, 5, 7}, 4, 0.5f, 3.f));
}

TEST_CASE("elu primitives with different alpha are not confused", "[pointwise]") {
  Tensor x = Tensor::from({3}, {-1, -2, 1});
  std::vector<float> a = elu(x, 0.5f).to_vector(), b = elu(x, 2.f).to_vector();
  REQUIRE(a[0] == Approx(0.5f * (std::exp(-1.f) - 1.f)));
  REQUIRE(b[0] == Approx(2.f * (std::exp(-1.f) - 1.f)));
  REQUIRE(b[2] == 1.f);
}

TEST_CASE("pointwise backward on a large tensor (threaded path)", "[pointwise]") {
  Tensor x = testing::randn({181, 193}, 5).set_requires_grad();
  Tensor y = sl::tanh(x);
  Tensor w = testing::randn(x.shape(), 6);
  backward(y, w);
  double worst = 0;
  for (int64_t i = 0; i < x.numel(); ++i) {
    float t = std::tanh(x.data()[i]);
    worst = std::max(worst, (double)std::abs(y.data()[i] - t));
    worst = std::max(worst, (double)std::abs(x.grad().data()[i] - w.data()[i] * (1 - t * t)));
  }
  REQUIRE(worst < 1e-5);
}

TEST_CASE("exp_approx: e^x to 3e-7 relative, clamped, infinities and NaN exact", "[pointwise]") {
  double worst = 0;
  for (float x = -87.f; x < 88.f; x += 0.00731f) worst = std::max(worst, std::abs(exp_approx(x) / std::exp((double)x) - 1));
  CHECK(worst < 3e-7);
  CHECK(worst > 1e-9);  // an approximation, not std::exp: the bound above is what it is tested against
  CHECK(exp_approx(0.f) == 1.f);
  CHECK(exp_approx(-1e4f) == Approx(std::exp(-87.0)).epsilon(1e-6));
  CHECK(exp_approx(1e4f) == Approx(std::exp(88.0)).epsilon(1e-6));
  CHECK(std::isnan(exp_approx(NAN)));
  CHECK(exp_approx(-INFINITY) == 0.f);
  CHECK(exp_approx(INFINITY) == INFINITY);
}

TEST_CASE("log_approx: ln x to 2e-7 max(1, |ln x|) over the normal floats", "[pointwise]") {
  double worst = 0;
  for (double lx = -87; lx < 88; lx += 0.000731) {
    const float x = (float)std::exp(lx);
    const double ref = std::log((double)x);
    worst = std::max(worst, std::abs(log_approx(x) - ref) / std::max(1.0, std::abs(ref)));
  }
  for (float x = 0.5f; x < 2.f; x += 1e-5f)  // around 1, where the two halves of the range meet
    worst = std::max(worst, std::abs(log_approx(x) - std::log((double)x)));
  CHECK(worst < 2e-7);
  CHECK(log_approx(1.f) == 0.f);
  CHECK(log_approx(2.f) == Approx(std::log(2.0)).epsilon(1e-7));
}

TEST_CASE("row_sum, row_dot and row_max_abs on hand-made rows", "[pointwise]") {
  const float x[] = {1.f, -2.5f, 3.f, 0.5f, -4.f, 2.f, 0.f, 1.f, -0.25f};
  const float y[] = {2.f, 1.f, -1.f, 4.f, 0.5f, 1.f, 7.f, -1.f, 4.f};
  CHECK(row_sum(x, 9) == 0.75f);
  CHECK(row_dot(x, y, 9) == 2.f - 2.5f - 3.f + 2.f - 2.f + 2.f + 0.f - 1.f - 1.f);
  CHECK(row_max_abs(x, 9) == 4.f);
  CHECK(row_max_abs(x, 0) == 0.f);
}

TEST_CASE("swiglu of [a | b] is silu(a) * b, with its gradients", "[pointwise][gradcheck]") {
  Tensor a = testing::randn({181, 193}, 7), b = testing::randn({181, 193}, 8);  // the threaded path
  Tensor fused = swiglu(concat({a, b}, -1)), composed = mul(silu(a), b);
  REQUIRE(fused.shape() == Shape{181, 193});
  const std::vector<float> f = fused.to_vector(), c = composed.to_vector();
  for (size_t i = 0; i < f.size(); ++i) REQUIRE(f[i] == Approx(c[i]).epsilon(1e-5).margin(1e-6));
  // far into both tails, where sigmoid saturates
  REQUIRE(swiglu(Tensor::from({2}, {-100.f, 1.f})).item() == Approx(0.f).margin(1e-30));
  REQUIRE(swiglu(Tensor::from({2}, {100.f, 2.f})).item() == Approx(200.f));
  auto f1 = [](const std::vector<Tensor>& in) { return swiglu(in[0]); };
  REQUIRE(testing::gradcheck(f1, {testing::randn({3, 5, 14}, 9)}) < 1e-3);
  // a gradient that already holds a contribution (h read twice) takes swiglu's on top
  REQUIRE(testing::gradcheck([](const std::vector<Tensor>& in) { return add(swiglu(in[0]), slice(in[0], -1, 0, 7)); },
                             {testing::randn({3, 5, 14}, 11)}) < 1e-3);
  // against the composition, through the threaded path's gradients
  Tensor h1 = concat({a, b}, -1).set_requires_grad(), h2 = h1.detach().clone().set_requires_grad();
  Tensor seed = testing::randn({181, 193}, 12);
  backward(swiglu(h1), seed);
  backward(mul(silu(slice(h2, -1, 0, 193)), slice(h2, -1, 193, 386)), seed);
  const std::vector<float> g1 = h1.grad().to_vector(), g2 = h2.grad().to_vector();
  for (size_t i = 0; i < g1.size(); ++i) REQUIRE(g1[i] == Approx(g2[i]).epsilon(1e-4).margin(1e-5));
  REQUIRE_THROWS_WITH(swiglu(testing::randn({181, 193}, 1)), Catch::Contains("must be even") && Catch::Contains("[181, 193]"));
}
