#include <catch2/catch.hpp>

#include "tests/gradcheck.h"

using namespace sl;

TEST_CASE("concat joins along any dimension", "[shape]") {
  Tensor a = Tensor::from({2, 2}, {1, 2, 3, 4}), b = Tensor::from({2, 1}, {5, 6});
  REQUIRE(concat({a, b}, 1).to_vector() == std::vector<float>{1, 2, 5, 3, 4, 6});
  REQUIRE(concat({a, b.transpose(0, 1)}, 0).to_vector() == std::vector<float>{1, 2, 3, 4, 5, 6});
  REQUIRE(concat({a, b}, -1).shape() == Shape{2, 3});
  auto cat = [](int64_t dim) {
    return [dim](const std::vector<Tensor>& in) { return concat({in[0], in[1], in[2]}, dim); };
  };
  REQUIRE(testing::gradcheck(cat(1), {testing::randn({3, 2, 5}, 1), testing::randn({3, 5, 5}, 2),
                                      testing::randn({3, 1, 5}, 3)}) < 1e-3);
  REQUIRE(testing::gradcheck(cat(0), {testing::randn({1, 3}, 4), testing::randn({5, 3}, 5),
                                      testing::randn({3, 3}, 6)}) < 1e-3);
  REQUIRE_THROWS_WITH(concat({a, b}, 0), Catch::Contains("[2, 1] does not match [2, 2]"));
  REQUIRE_THROWS_AS(concat({a, b}, 2), Error);
}

TEST_CASE("split and slice are views with gradients", "[shape]") {
  Tensor x = Tensor::from({2, 5}, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
  auto parts = split(x, {2, 3}, 1);
  REQUIRE(parts.size() == 2);
  REQUIRE(parts[0].to_vector() == std::vector<float>{0, 1, 5, 6});
  REQUIRE(parts[1].to_vector() == std::vector<float>{2, 3, 4, 7, 8, 9});
  REQUIRE(slice(x, 0, 1, 2).to_vector() == std::vector<float>{5, 6, 7, 8, 9});
  REQUIRE(slice(x, -1, 4, 4).shape() == Shape{2, 0});

  // Reordering the parts of a split needs every part's gradient routed back.
  REQUIRE(testing::gradcheck(
              [](const std::vector<Tensor>& in) {
                auto p = split(in[0], {3, 1, 3}, 1);
                return concat({p[2], p[0], p[1]}, 1);
              },
              {testing::randn({5, 7, 3}, 1)}) < 1e-3);
  // A slice of a transposed view, made dense.
  REQUIRE(testing::gradcheck(
              [](const std::vector<Tensor>& in) { return slice(in[0].transpose(0, 2), 1, 1, 4).contiguous(); },
              {testing::randn({3, 5, 7}, 2)}) < 1e-3);
  REQUIRE_THROWS_WITH(split(x, {2, 2}, 1), Catch::Contains("do not add up"));
  REQUIRE_THROWS_WITH(slice(x, 1, 3, 6), Catch::Contains("range [3, 6)"));
}
