#include <catch2/catch.hpp>

#include "tests/gradcheck.h"

using namespace sl;

TEST_CASE("embedding gathers rows and accumulates gradients of repeated ids", "[index]") {
  Tensor w = testing::randn({5, 3}, 1).set_requires_grad();
  std::vector<int32_t> ids{2, 0, 2, 4, 2};
  Tensor e = embedding(w, ids);
  REQUIRE(e.shape() == Shape{5, 3});
  std::vector<float> wv = w.to_vector(), ev = e.to_vector();
  for (int i = 0; i < 5; ++i)
    for (int j = 0; j < 3; ++j) REQUIRE(ev[i * 3 + j] == wv[ids[i] * 3 + j]);
  Tensor g = testing::randn({5, 3}, 2);
  backward(e, g);
  std::vector<float> gv = g.to_vector(), gw = w.grad().to_vector();
  for (int j = 0; j < 3; ++j) {
    REQUIRE(gw[2 * 3 + j] == Approx(gv[0 * 3 + j] + gv[2 * 3 + j] + gv[4 * 3 + j]));
    REQUIRE(gw[0 * 3 + j] == Approx(gv[1 * 3 + j]));
    REQUIRE(gw[1 * 3 + j] == 0.f);
    REQUIRE(gw[3 * 3 + j] == 0.f);
  }
  REQUIRE(testing::gradcheck([&](const std::vector<Tensor>& in) { return embedding(in[0], ids); },
                             {testing::randn({5, 7}, 3)}) < 1e-3);
}

TEST_CASE("embedding rejects ids outside the vocabulary", "[index]") {
  Tensor w = Tensor::zeros({5, 3});
  REQUIRE_THROWS_WITH(embedding(w, {1, 5}), Catch::Contains("token id 5") && Catch::Contains("[0, 5)"));
  REQUIRE_THROWS_WITH(embedding(w, {-1}), Catch::Contains("token id -1"));
}

TEST_CASE("large scatter-add with many repeated rows matches a serial sum", "[index]") {
  // Big enough for the parallel path: threads must not race on repeated destination rows.
  int64_t m = 3001, d = 37, n = 7;
  std::vector<int32_t> idx(m);
  for (int64_t i = 0; i < m; ++i) idx[i] = (int32_t)((i * 5) % n);
  Tensor x = testing::randn({m, d}, 4);
  std::vector<float> out = scatter_add_rows(x, idx, n).to_vector(), xv = x.to_vector();
  std::vector<double> ref(n * d, 0.0);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < d; ++j) ref[idx[i] * d + j] += xv[i * d + j];
  for (int64_t i = 0; i < n * d; ++i) REQUIRE(out[i] == Approx(ref[i]).margin(1e-3));
}

TEST_CASE("gather_rows and scatter_add_rows are adjoint and differentiable", "[index]") {
  std::vector<int32_t> idx{3, 1, 3, 0, 6, 3, 2};
  Tensor x = testing::randn({7, 5}, 5), y = testing::randn({7, 5}, 6);
  // <gather(x), y> == <x, scatter(y)>
  std::vector<float> gx = gather_rows(x, idx).to_vector(), sy = scatter_add_rows(y, idx, 7).to_vector();
  std::vector<float> xv = x.to_vector(), yv = y.to_vector();
  double lhs = 0, rhs = 0;
  for (size_t i = 0; i < gx.size(); ++i) lhs += (double)gx[i] * yv[i];
  for (size_t i = 0; i < sy.size(); ++i) rhs += (double)xv[i] * sy[i];
  REQUIRE(lhs == Approx(rhs).epsilon(1e-5));
  // Row 4 and 5 receive nothing.
  for (int j = 0; j < 5; ++j) REQUIRE(sy[4 * 5 + j] == 0.f);

  REQUIRE(testing::gradcheck([&](const std::vector<Tensor>& in) { return gather_rows(in[0], idx); }, {x}) < 1e-3);
  REQUIRE(testing::gradcheck([&](const std::vector<Tensor>& in) { return scatter_add_rows(in[0], idx, 9); }, {y}) <
          1e-3);
  REQUIRE_THROWS_WITH(gather_rows(x, {7}), Catch::Contains("index 7"));
  REQUIRE_THROWS_WITH(scatter_add_rows(y, idx, 3), Catch::Contains("outside [0, 3)"));
  REQUIRE_THROWS_WITH(scatter_add_rows(testing::randn({3, 5}, 7), idx, 9), Catch::Contains("one row per index"));
}

TEST_CASE("topk picks the largest values in order, ties to the lower index", "[index]") {
  Tensor x = Tensor::from({2, 5}, {0.5f, 2.f, -1.f, 2.f, 1.f,  //
                                   3.f, 3.f, 3.f, 0.f, 4.f});
  TopK t = topk(x, 3);
  REQUIRE(t.values.shape() == Shape{2, 3});
  REQUIRE(t.values.to_vector() == std::vector<float>{2, 2, 1, 4, 3, 3});
  REQUIRE(t.indices == std::vector<int32_t>{1, 3, 4, 9 - 5, 0, 1});
  REQUIRE_THROWS_WITH(topk(x, 6), Catch::Contains("k = 6"));
  REQUIRE_THROWS_AS(topk(x, 0), Error);
}

TEST_CASE("topk routes the gradient to the chosen entries only", "[index]") {
  Tensor x = testing::randn({3, 7}, 8).set_requires_grad();
  TopK t = topk(x, 2);
  Tensor g = testing::randn({3, 2}, 9);
  backward(t.values, g);
  std::vector<float> gx = x.grad().to_vector(), gv = g.to_vector();
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 7; ++c) {
      float expect = 0;
      for (int j = 0; j < 2; ++j)
        if (t.indices[r * 2 + j] == c) expect = gv[r * 2 + j];
      REQUIRE(gx[r * 7 + c] == expect);
    }
  // Distinct values keep the selection stable under small perturbations.
  REQUIRE(testing::gradcheck([](const std::vector<Tensor>& in) { return topk(in[0], 3).values; },
                             {testing::randn({3, 7}, 10)}, 1e-3) < 1e-3);
}
