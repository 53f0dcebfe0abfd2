#include <catch2/catch.hpp>

#include <cmath>

#include "tests/gradcheck.h"

using namespace sl;

TEST_CASE("rope rotates each pair by position times frequency", "[rope]") {
  // Dh = 2: one pair with frequency theta^0 = 1, so position t rotates by t radians.
  Tensor x = Tensor::from({1, 3, 1, 2}, {1, 0, 1, 0, 0, 2});
  std::vector<float> y = rope(x, 10000.f).to_vector();
  std::vector<float> expect{1, 0, std::cos(1.f), std::sin(1.f), -2 * std::sin(2.f), 2 * std::cos(2.f)};
  for (size_t i = 0; i < y.size(); ++i) REQUIRE(y[i] == Approx(expect[i]).margin(1e-6));

  // Position 0 is the identity; every position preserves each pair's norm.
  Tensor z = testing::randn({2, 5, 3, 6}, 1);
  std::vector<float> zv = z.to_vector(), r = rope(z, 100.f).to_vector();
  for (int i = 0; i < 2 * 5 * 3 * 6; ++i) {
    if ((i / 18) % 5 == 0) REQUIRE(r[i] == zv[i]);
    if (i % 2 == 0)
      REQUIRE(std::hypot(r[i], r[i + 1]) == Approx(std::hypot(zv[i], zv[i + 1])).epsilon(1e-5));
  }
  // pos0 shifts positions: rope of the last token alone at pos0 = 4 equals its value in the sequence.
  std::vector<float> last = rope(slice(z, 1, 4, 5), 100.f, 4).to_vector();
  for (int b = 0; b < 2; ++b)
    for (int j = 0; j < 18; ++j) REQUIRE(last[b * 18 + j] == Approx(r[(b * 5 + 4) * 18 + j]).margin(1e-6));
}

TEST_CASE("rope makes q.k depend on relative position only", "[rope]") {
  Tensor q = testing::randn({1, 1, 1, 8}, 2), k = testing::randn({1, 1, 1, 8}, 3);
  auto dot_at = [&](int64_t tq, int64_t tk) {
    std::vector<float> a = rope(q, 10000.f, tq).to_vector(), b = rope(k, 10000.f, tk).to_vector();
    double s = 0;
    for (int i = 0; i < 8; ++i) s += (double)a[i] * b[i];
    return s;
  };
  REQUIRE(dot_at(7, 3) == Approx(dot_at(4, 0)).epsilon(1e-4));
  REQUIRE(dot_at(7, 3) != Approx(dot_at(7, 4)).epsilon(1e-4));
}

TEST_CASE("rope gradient and head-dim check", "[rope]") {
  REQUIRE(testing::gradcheck([](const std::vector<Tensor>& in) { return rope(in[0], 500.f, 5); },
                             {testing::randn({2, 3, 3, 6}, 4)}) < 1e-3);
  REQUIRE_THROWS_WITH(rope(Tensor::zeros({1, 2, 3, 5})), Catch::Contains("must be even"));
  REQUIRE_THROWS_WITH(rope(Tensor::zeros({2, 3, 4})), Catch::Contains("[B, T, H, Dh]"));
}

TEST_CASE("masked_fill broadcasts a trailing mask and blocks gradients", "[mask]") {
  // A causal mask [T, T] over x[B, T, T].
  std::vector<uint8_t> causal{0, 1, 1, 0, 0, 1, 0, 0, 0};
  Tensor x = testing::randn({2, 3, 3}, 5).set_requires_grad();
  Tensor y = masked_fill(x, causal, {3, 3}, -1e9f);
  std::vector<float> xv = x.to_vector(), yv = y.to_vector();
  for (int i = 0; i < 18; ++i) REQUIRE(yv[i] == (causal[i % 9] ? -1e9f : xv[i]));
  backward(y, Tensor::ones({2, 3, 3}));
  std::vector<float> g = x.grad().to_vector();
  for (int i = 0; i < 18; ++i) REQUIRE(g[i] == (causal[i % 9] ? 0.f : 1.f));

  REQUIRE(testing::gradcheck(
              [&](const std::vector<Tensor>& in) { return masked_fill(in[0], causal, {3, 3}, 0.5f); },
              {testing::randn({5, 3, 3}, 6)}) < 1e-3);
  REQUIRE_THROWS_WITH(masked_fill(x, causal, {9}, 0.f), Catch::Contains("not the trailing shape"));
  REQUIRE_THROWS_WITH(masked_fill(x, {1, 0}, {3, 3}, 0.f), Catch::Contains("2 mask values"));
}
