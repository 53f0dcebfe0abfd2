#include <catch2/catch.hpp>

#include "engine/ops/raw.h"
#include "engine/threads.h"
#include "tests/gradcheck.h"

using namespace sl;

namespace {
// Naive a[..., M, K] @ b[..., K, N] (b 2-D or batched like a), for reference values.
std::vector<float> naive_matmul(const Tensor& a, const Tensor& b) {
  std::vector<float> av = a.to_vector(), bv = b.to_vector();
  int64_t m = a.size(-2), k = a.size(-1), n = b.size(-1), batch = a.numel() / (m * k);
  std::vector<float> c(batch * m * n, 0.f);
  for (int64_t p = 0; p < batch; ++p) {
    const float* bp = bv.data() + (b.dim() == 2 ? 0 : p * k * n);
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) {
        double s = 0;
        for (int64_t l = 0; l < k; ++l) s += (double)av[(p * m + i) * k + l] * bp[l * n + j];
        c[(p * m + i) * n + j] = (float)s;
      }
  }
  return c;
}

void require_close(const std::vector<float>& a, const std::vector<float>& b, float tol = 1e-4f) {
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) REQUIRE(a[i] == Approx(b[i]).margin(tol));
}
}  // namespace

TEST_CASE("matmul of small matrices matches hand-computed values", "[matmul]") {
  Tensor a = Tensor::from({2, 3}, {1, 2, 3, 4, 5, 6});
  Tensor b = Tensor::from({3, 2}, {7, 8, 9, 10, 11, 12});
  Tensor c = matmul(a, b);
  REQUIRE(c.shape() == Shape{2, 2});
  REQUIRE(c.to_vector() == std::vector<float>{58, 64, 139, 154});
}

TEST_CASE("matmul values for shared, batched and strided operands", "[matmul]") {
  Tensor a = testing::randn({3, 5, 7}, 1), b = testing::randn({7, 9}, 2);
  require_close(matmul(a, b).to_vector(), naive_matmul(a, b));
  Tensor a4 = testing::randn({2, 3, 5, 7}, 3), b4 = testing::randn({2, 3, 7, 9}, 4);
  require_close(matmul(a4, b4).to_vector(), naive_matmul(a4, b4));
  // Transposed views and a batch layout whose rows do not form one run (permuted leading dims).
  Tensor at = testing::randn({3, 7, 5}, 5).transpose(-1, -2), bt = testing::randn({9, 7}, 6).transpose(-1, -2);
  require_close(matmul(at, bt).to_vector(), naive_matmul(at, bt));
  Tensor ap = testing::randn({5, 3, 7}, 7).transpose(0, 1);
  REQUIRE(ap.shape() == Shape{3, 5, 7});
  require_close(matmul(ap, b).to_vector(), naive_matmul(ap, b));
  Tensor q = testing::randn({2, 5, 3, 7}, 8).permute({0, 2, 1, 3});  // [B, H, T, Dh] attention layout
  Tensor k = testing::randn({2, 5, 3, 7}, 9).permute({0, 2, 3, 1});  // [B, H, Dh, T]
  require_close(matmul(q, k).to_vector(), naive_matmul(q, k));
}

TEST_CASE("matmul gradients", "[matmul]") {
  auto mm = [](const std::vector<Tensor>& in) { return matmul(in[0], in[1]); };
  REQUIRE(testing::gradcheck(mm, {testing::randn({3, 5, 7}, 1), testing::randn({7, 9}, 2)}) < 1e-3);
  REQUIRE(testing::gradcheck(mm, {testing::randn({2, 3, 5, 7}, 3), testing::randn({2, 3, 7, 9}, 4)}) < 1e-3);
  REQUIRE(testing::gradcheck(mm, {testing::randn({5, 7}, 5), testing::randn({7, 3}, 6)}) < 1e-3);
  // Transposed views of both operands.
  REQUIRE(testing::gradcheck(
              [](const std::vector<Tensor>& in) {
                return matmul(in[0].transpose(-1, -2), in[1].transpose(-1, -2));
              },
              {testing::randn({3, 7, 5}, 7), testing::randn({3, 9, 7}, 8)}) < 1e-3);
  // A shared b with an `a` whose batch rows are not one run (b's gradient sums over the batch).
  REQUIRE(testing::gradcheck(
              [](const std::vector<Tensor>& in) { return matmul(in[0].transpose(0, 1), in[1]); },
              {testing::randn({5, 3, 7}, 9), testing::randn({7, 9}, 10)}) < 1e-3);
  // The same tensor on both sides: both gradient terms accumulate into one buffer.
  REQUIRE(testing::gradcheck([](const std::vector<Tensor>& in) { return matmul(in[0], in[0]); },
                             {testing::randn({5, 5}, 11)}) < 1e-3);
}

TEST_CASE("matmul gradients accumulate across backward calls", "[matmul]") {
  Tensor a = testing::randn({3, 5}, 1).set_requires_grad(), b = testing::randn({5, 7}, 2).set_requires_grad();
  Tensor seed = testing::randn({3, 7}, 3);
  backward(matmul(a, b), seed);
  std::vector<float> ga = a.grad().to_vector(), gb = b.grad().to_vector();
  backward(matmul(a, b), seed);
  std::vector<float> ga2 = a.grad().to_vector(), gb2 = b.grad().to_vector();
  for (size_t i = 0; i < ga.size(); ++i) REQUIRE(ga2[i] == Approx(2 * ga[i]));
  for (size_t i = 0; i < gb.size(); ++i) REQUIRE(gb2[i] == Approx(2 * gb[i]));
}

TEST_CASE("linear matches x @ W^T + b and has correct gradients", "[matmul]") {
  Tensor x = testing::randn({2, 3, 5}, 1), w = testing::randn({7, 5}, 2), bias = testing::randn({7}, 3);
  std::vector<float> y = linear(x, w, bias).to_vector(), ref = naive_matmul(x, w.transpose(0, 1));
  std::vector<float> bv = bias.to_vector();
  for (size_t i = 0; i < ref.size(); ++i) ref[i] += bv[i % 7];
  require_close(y, ref);
  require_close(linear(x, w).to_vector(), naive_matmul(x, w.transpose(0, 1)));

  REQUIRE(testing::gradcheck([](const std::vector<Tensor>& in) { return linear(in[0], in[1], in[2]); },
                             {x, w, bias}) < 1e-3);
  REQUIRE(testing::gradcheck([](const std::vector<Tensor>& in) { return linear(in[0], in[1]); },
                             {testing::randn({3, 5}, 4), testing::randn({9, 5}, 5)}) < 1e-3);
  // A strided input (rows not contiguous).
  REQUIRE(testing::gradcheck([](const std::vector<Tensor>& in) { return linear(in[0].transpose(0, 1), in[1], in[2]); },
                             {testing::randn({3, 7, 5}, 6), testing::randn({9, 5}, 7), testing::randn({9}, 8)}) < 1e-3);
}

TEST_CASE("matmul and linear reject mismatched shapes", "[matmul]") {
  REQUIRE_THROWS_WITH(matmul(Tensor::zeros({3, 5}), Tensor::zeros({7, 9})),
                      Catch::Contains("inner dimensions") && Catch::Contains("[3, 5] @ [7, 9]"));
  REQUIRE_THROWS_WITH(matmul(Tensor::zeros({2, 3, 5}), Tensor::zeros({4, 5, 9})), Catch::Contains("batch dims"));
  REQUIRE_THROWS_AS(matmul(Tensor::zeros({5}), Tensor::zeros({5, 3})), Error);
  REQUIRE_THROWS_WITH(linear(Tensor::zeros({3, 5}), Tensor::zeros({7, 4})), Catch::Contains("[out, in] [7, 4]"));
  REQUIRE_THROWS_WITH(linear(Tensor::zeros({3, 5}), Tensor::zeros({7, 5}), Tensor::zeros({5})),
                      Catch::Contains("bias [5]"));
}

TEST_CASE("a product that would need a large scratchpad runs in halves of c's rows", "[matmul]") {
  // dW = dY^T X of the large shape's FFN: at 16 threads oneDNN sums the long K in per-thread
  // copies of c and asks for 53 MB, over gemm's cap, so gemm splits c's rows (recursively); at 2
  // threads it needs about 2 MB and runs whole. Both must agree (as must accumulating into c).
  const Tensor dy = testing::randn({2048, 1376}, 1), x = testing::randn({2048, 512}, 2), c0 = testing::randn({1376, 512}, 3);
  const int threads = num_threads();
  auto product = [&](int n, bool accumulate) {
    set_num_threads(n);
    Tensor c = c0.clone();
    gemm(mT(dy), x, c, nullptr, accumulate);
    set_num_threads(threads);
    return c.to_vector();
  };
  for (bool accumulate : {false, true}) {
    const std::vector<float> whole = product(2, accumulate), halves = product(16, accumulate);
    double worst = 0;
    for (size_t i = 0; i < whole.size(); ++i) worst = std::max(worst, (double)std::abs(whole[i] - halves[i]));
    CHECK(worst < 1e-3);  // sums of 2048 products of unit normals: about 45 in size
  }
}
