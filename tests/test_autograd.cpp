#include <catch2/catch.hpp>

#include "tests/gradcheck.h"

using namespace sl;

TEST_CASE("views share storage and route gradients back", "[autograd]") {
  Tensor x = testing::randn({3, 5, 7}, 1);
  Tensor t = x.transpose(0, 2);
  REQUIRE(t.shape() == Shape{7, 5, 3});
  REQUIRE_FALSE(t.is_contiguous());
  // element (i,j,k) of x is element (k,j,i) of t
  Tensor c = t.contiguous();
  REQUIRE(c.data()[(2 * 5 + 4) * 3 + 1] == x.data()[(1 * 5 + 4) * 7 + 2]);
  double err = testing::gradcheck(
      [](const std::vector<Tensor>& in) { return in[0].permute({2, 0, 1}).reshape({7, 15}); }, {x});
  REQUIRE(err < 1e-3);
}

TEST_CASE("gradients accumulate across backward calls and stop under NoGrad", "[autograd]") {
  Tensor x = Tensor::from({3}, {1, 2, 3}).set_requires_grad();
  for (int i = 0; i < 2; ++i) sum(mul(x, x)).backward();  // d/dx sum x^2 = 2x, twice
  auto g = x.grad().to_vector();
  REQUIRE(g == std::vector<float>{4, 8, 12});
  NoGrad ng;
  Tensor y = mul(x, x);
  REQUIRE_FALSE(y.requires_grad());
}

TEST_CASE("the buffer pool reuses a freed buffer of the same size and releases the idle ones", "[tensor]") {
  const int64_t n = 123457;  // a size no other test allocates
  const int64_t pooled = Storage::pooled_bytes();
  float* first = nullptr;
  {
    Tensor t = Tensor::full({n}, 2.f);
    first = t.data();
    REQUIRE(t.data()[n - 1] == 2.f);
  }
  CHECK(Storage::pooled_bytes() > pooled);  // back in the pool, not freed
  {
    Tensor again = Tensor::empty({n});
    CHECK(again.data() == first);  // the same buffer
  }
  Storage::release_free();
  CHECK(Storage::pooled_bytes() == 0);
}
