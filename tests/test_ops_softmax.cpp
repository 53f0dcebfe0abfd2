#include <catch2/catch.hpp>

#include <cmath>

#include "tests/gradcheck.h"

using namespace sl;

TEST_CASE("softmax and log_softmax known values", "[softmax]") {
  Tensor x = Tensor::from({1, 2}, {0.f, std::log(2.f)});
  std::vector<float> p = softmax(x).to_vector(), lp = log_softmax(x).to_vector();
  REQUIRE(p[0] == Approx(1.f / 3));
  REQUIRE(p[1] == Approx(2.f / 3));
  REQUIRE(lp[0] == Approx(std::log(1.f / 3)));
  REQUIRE(lp[1] == Approx(std::log(2.f / 3)));
}

TEST_CASE("softmax rows sum to 1, are shift invariant and stable for large logits", "[softmax]") {
  Tensor x = testing::randn({3, 5, 7}, 1, 2.f);
  std::vector<float> p = softmax(x).to_vector(), q = softmax(add_scalar(x, 1000.f)).to_vector();
  std::vector<float> lp = log_softmax(add_scalar(x, -1000.f)).to_vector();
  for (int64_t r = 0; r < 15; ++r) {
    double s = 0;
    for (int64_t i = 0; i < 7; ++i) {
      s += p[r * 7 + i];
      // x + 1000 keeps only ~5 decimals of x (float spacing there is 6e-5)
      REQUIRE(q[r * 7 + i] == Approx(p[r * 7 + i]).margin(2e-5));
      REQUIRE(lp[r * 7 + i] == Approx(std::log(p[r * 7 + i])).margin(2e-4));
    }
    REQUIRE(s == Approx(1.0).epsilon(1e-6));
  }
}

TEST_CASE("softmax and log_softmax gradients match finite differences", "[softmax][gradcheck]") {
  Tensor x = testing::randn({3, 5, 7}, 2);
  REQUIRE(testing::gradcheck([](const std::vector<Tensor>& in) { return softmax(in[0]); }, {x}) < 1e-3);
  REQUIRE(testing::gradcheck([](const std::vector<Tensor>& in) { return log_softmax(in[0]); }, {x.clone()}) < 1e-3);
  REQUIRE(testing::gradcheck([](const std::vector<Tensor>& in) { return softmax(in[0].transpose(0, 2)); },
                             {x.clone()}) < 1e-3);
  REQUIRE(testing::gradcheck([](const std::vector<Tensor>& in) { return log_softmax(in[0]); },
                             {testing::randn({1, 13}, 3)}) < 1e-3);
}

TEST_CASE("log_softmax backward on a large input (threaded path) matches log(softmax)", "[softmax]") {
  Tensor x1 = testing::randn({37, 1001}, 4), x2 = x1.clone();
  x1.set_requires_grad();
  x2.set_requires_grad();
  Tensor seed = testing::randn({37, 1001}, 5);
  backward(log_softmax(x1), seed);
  backward(sl::log(softmax(x2)), seed);
  double worst = 0;
  for (int64_t i = 0; i < x1.numel(); ++i)
    worst = std::max(worst, (double)std::abs(x1.grad().data()[i] - x2.grad().data()[i]));
  REQUIRE(worst < 1e-4);
}
