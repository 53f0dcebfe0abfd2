#include <catch2/catch.hpp>

#include <cmath>

#include "engine/precision.h"
#include "tests/bf16_here.h"
#include "tests/gradcheck.h"

using namespace sl;

namespace {

// Per-row logsumexp in double, the reference for the fused op.
std::vector<double> row_lse(const Tensor& logits) {
  int64_t N = logits.size(0), V = logits.size(1);
  std::vector<double> out(N);
  for (int64_t r = 0; r < N; ++r) {
    double s = 0;
    for (int64_t i = 0; i < V; ++i) s += std::exp((double)logits.data()[r * V + i]);
    out[r] = std::log(s);
  }
  return out;
}

}  // namespace

TEST_CASE("cross_entropy known values", "[cross_entropy]") {
  // uniform logits: -log(1/V)
  REQUIRE(cross_entropy(Tensor::full({4, 13}, 0.7f), {0, 5, 12, 3}).item() == Approx(std::log(13.0)));
  // softmax([0, ln 2]) = [1/3, 2/3]
  Tensor x = Tensor::from({1, 2}, {0.f, std::log(2.f)});
  REQUIRE(cross_entropy(x, {1}).item() == Approx(-std::log(2.0 / 3)));
  REQUIRE(cross_entropy(x, {0}).item() == Approx(std::log(3.0)));
}

TEST_CASE("cross_entropy equals the mean of -log_softmax at the targets over counted rows", "[cross_entropy]") {
  Tensor x = testing::randn({6, 11}, 1, 2.f);
  std::vector<int32_t> t = {3, -1, 10, 0, -1, 7};
  std::vector<float> lp = log_softmax(x).to_vector();
  double ref = -(lp[0 * 11 + 3] + lp[2 * 11 + 10] + lp[3 * 11 + 0] + lp[5 * 11 + 7]) / 4;
  REQUIRE(cross_entropy(x, t).item() == Approx(ref).epsilon(1e-5));
  // a custom ignore_index: -100, and an ignore_index that is a valid class (row 3 targets class 0)
  std::vector<int32_t> t100 = {3, -100, 10, 0, -100, 7};
  REQUIRE(cross_entropy(x, t100, -100).item() == Approx(ref).epsilon(1e-5));
  double ref0 = -(lp[0 * 11 + 3] + lp[2 * 11 + 10] + lp[5 * 11 + 7]) / 3;
  REQUIRE(cross_entropy(x, {3, 0, 10, 0, 0, 7}, 0).item() == Approx(ref0).epsilon(1e-5));
}

TEST_CASE("cross_entropy z_loss adds z * mean(lse^2) over counted rows", "[cross_entropy]") {
  Tensor x = testing::randn({5, 9}, 2, 1.5f);
  std::vector<int32_t> t = {1, 8, -1, 4, 0};
  std::vector<double> lse = row_lse(x);
  double z2 = (lse[0] * lse[0] + lse[1] * lse[1] + lse[3] * lse[3] + lse[4] * lse[4]) / 4;
  float base = cross_entropy(x, t).item();
  REQUIRE(cross_entropy(x, t, -1, 1e-2f).item() == Approx(base + 1e-2 * z2).epsilon(1e-5));
  REQUIRE(cross_entropy(x, t, -1, 0.5f).item() == Approx(base + 0.5 * z2).epsilon(1e-5));
}

TEST_CASE("cross_entropy gradients, with ignored rows getting none", "[cross_entropy][gradcheck]") {
  std::vector<int32_t> t = {2, -1, 10, 0, 5, -1, 7};
  for (float z : {0.f, 0.1f}) {
    INFO("z_loss " << z);
    Tensor x = testing::randn({7, 11}, 3, 2.f);
    REQUIRE(testing::gradcheck([&](const std::vector<Tensor>& in) { return cross_entropy(in[0], t, -1, z); }, {x}) <
            1e-3);
    std::vector<float> g = x.grad().to_vector();
    for (int64_t i = 0; i < 11; ++i) {
      REQUIRE(g[1 * 11 + i] == 0.f);
      REQUIRE(g[5 * 11 + i] == 0.f);
    }
  }
  // strided logits: the transpose of a [V, N] tensor
  REQUIRE(testing::gradcheck(
              [&](const std::vector<Tensor>& in) { return cross_entropy(in[0].transpose(0, 1), t, -1, 0.1f); },
              {testing::randn({11, 7}, 4)}) < 1e-3);
}

TEST_CASE("cross_entropy with every row ignored is 0 with zero gradient", "[cross_entropy]") {
  Tensor x = testing::randn({3, 5}, 5).set_requires_grad();
  Tensor loss = cross_entropy(x, {-1, -1, -1}, -1, 0.1f);
  REQUIRE(loss.item() == 0.f);
  loss.backward();
  REQUIRE(x.grad().defined());
  for (float g : x.grad().to_vector()) REQUIRE(g == 0.f);
}

TEST_CASE("cross_entropy rejects targets outside the vocabulary", "[cross_entropy]") {
  Tensor x = testing::randn({3, 5}, 6);
  REQUIRE_THROWS_WITH(cross_entropy(x, {0, 1, 5}), Catch::Contains("target 5 at row 2"));
  REQUIRE_THROWS_WITH(cross_entropy(x, {-2, 1, 1}), Catch::Contains("target -2 at row 0"));
  REQUIRE_THROWS_AS(cross_entropy(x, {0, 1}), Error);
  REQUIRE_THROWS_AS(cross_entropy(testing::randn({3, 5, 2}, 7), {0, 1, 2}), Error);
}

TEST_CASE("cross_entropy on a large batch (threaded path) matches the analytic gradient", "[cross_entropy]") {
  const int64_t N = 37, V = 1001;
  Tensor x = testing::randn({N, V}, 8, 2.f).set_requires_grad();
  std::vector<int32_t> t(N);
  for (int64_t r = 0; r < N; ++r) t[r] = r % 5 == 0 ? -1 : (int32_t)((r * 131) % V);
  const float z = 1e-3f;
  Tensor loss = cross_entropy(x, t, -1, z);
  loss.backward();
  std::vector<double> lse = row_lse(x);
  double ref = 0, worst = 0;
  int count = 0;
  for (int64_t r = 0; r < N; ++r) count += t[r] != -1;
  for (int64_t r = 0; r < N; ++r) {
    for (int64_t i = 0; i < V; ++i) {
      double g = 0;
      if (t[r] != -1) g = (std::exp(x.data()[r * V + i] - lse[r]) * (1 + 2 * z * lse[r]) - (i == t[r])) / count;
      worst = std::max(worst, std::abs(x.grad().data()[r * V + i] - g));
    }
    if (t[r] != -1) ref += (lse[r] - x.data()[r * V + t[r]] + z * lse[r] * lse[r]) / count;
  }
  REQUIRE(loss.item() == Approx(ref).epsilon(1e-5));
  REQUIRE(worst < 1e-6);
}

// The fused output layer + cross-entropy against its composition and finite differences.
namespace {

struct LossAndGrads {
  float loss;
  std::vector<float> dx, dw;
};

LossAndGrads run_loss(bool fused, const Tensor& x0, const Tensor& w0, const std::vector<int32_t>& t, float z) {
  Tensor x = x0.clone().set_requires_grad(), w = w0.clone().set_requires_grad();
  Tensor loss = fused ? linear_cross_entropy(x, w, t, -1, z) : cross_entropy(linear(x, w), t, -1, z);
  backward(loss, Tensor::scalar(0.5f));  // a seed other than 1 scales both products
  return {loss.item(), x.grad().to_vector(), w.grad().to_vector()};
}

}  // namespace

TEST_CASE("linear_cross_entropy equals cross_entropy of linear, in value and gradients", "[cross_entropy][fused]") {
  // N = 300 rows of V = 517 classes take the threaded path; every seventh row is ignored.
  const int64_t N = 300, D = 24, V = 517;
  Tensor x = testing::randn({N, D}, 11), w = testing::randn({V, D}, 12, 0.3f);
  std::vector<int32_t> t(N);
  for (int64_t r = 0; r < N; ++r) t[r] = r % 7 == 3 ? -1 : (int32_t)((r * 37) % V);
  for (bool bf16 : {false, true})
    for (float z : {0.f, 1e-2f}) {
      INFO("bf16 " << bf16 << " z_loss " << z);
      if (bf16 && !testing::bf16_here()) continue;
      set_matmul_precision(bf16 ? MatmulPrecision::bf16 : MatmulPrecision::f32);
      const LossAndGrads a = run_loss(true, x, w, t, z), b = run_loss(false, x, w, t, z);
      set_matmul_precision(MatmulPrecision::f32);
      // Both round the same operands in bf16; the composition rounds the gradient rows after the
      // 1 / count scale, the fused op before it: 2^-8 relative per element at most.
      const double tol = bf16 ? 1e-2 : 1e-5;
      REQUIRE(a.loss == Approx(b.loss).epsilon(1e-5));
      std::vector<double> ax(a.dx.begin(), a.dx.end()), bx(b.dx.begin(), b.dx.end());
      std::vector<double> aw(a.dw.begin(), a.dw.end()), bw(b.dw.begin(), b.dw.end());
      REQUIRE(testing::rel_error(ax, bx) < tol);
      REQUIRE(testing::rel_error(aw, bw) < tol);
    }
}

TEST_CASE("linear_cross_entropy gradients against finite differences", "[cross_entropy][fused][gradcheck]") {
  std::vector<int32_t> t = {2, -1, 10, 0, 5, -1, 7};
  for (float z : {0.f, 0.1f}) {
    INFO("z_loss " << z);
    REQUIRE(testing::gradcheck([&](const std::vector<Tensor>& in) { return linear_cross_entropy(in[0], in[1], t, -1, z); },
                               {testing::randn({7, 5}, 13), testing::randn({11, 5}, 14)}) < 1e-3);
  }
}

TEST_CASE("linear_cross_entropy: every row ignored, no gradient mode, bad shapes", "[cross_entropy][fused]") {
  Tensor x = testing::randn({3, 4}, 15).set_requires_grad(), w = testing::randn({5, 4}, 16).set_requires_grad();
  Tensor loss = linear_cross_entropy(x, w, {-1, -1, -1}, -1, 0.1f);
  REQUIRE(loss.item() == 0.f);
  loss.backward();
  for (float g : x.grad().to_vector()) REQUIRE(g == 0.f);
  for (float g : w.grad().to_vector()) REQUIRE(g == 0.f);
  {
    NoGrad ng;  // the loss alone, as evaluation takes it
    REQUIRE(linear_cross_entropy(x, w, {0, 4, 2}).item() == Approx(cross_entropy(linear(x, w), {0, 4, 2}).item()));
  }
  REQUIRE_THROWS_WITH(linear_cross_entropy(x, testing::randn({5, 3}, 17), {0, 1, 2}),
                      Catch::Contains("x must be [N, D] and the weight [V, D]"));
  REQUIRE_THROWS_WITH(linear_cross_entropy(x, w, {0, 1, 5}), Catch::Contains("target 5 at row 2"));
}
