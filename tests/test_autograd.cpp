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

TEST_CASE("an add's first operand adopts the output gradient without corrupting the other's", "[autograd]") {
  // a feeds the add and, through c, a second consumer; b only the add. The backward of s hands its
  // gradient to a itself; c's contribution then lands in that buffer, so b must have had a copy.
  Tensor x = testing::randn({4, 6}, 21), y = testing::randn({4, 6}, 22);
  Tensor w1 = testing::randn({4, 6}, 23), w2 = testing::randn({4, 6}, 24);
  x.set_requires_grad(), y.set_requires_grad();
  Tensor a = scale(x, 1.f), b = scale(y, 1.f);
  Tensor s = add(a, b), c = scale(a, 3.f);
  sum(add(mul(s, w1), mul(c, w2))).backward();
  std::vector<float> gx = x.grad().to_vector(), gy = y.grad().to_vector();
  for (int64_t i = 0; i < 24; ++i) {
    REQUIRE(gx[i] == Approx(w1.data()[i] + 3 * w2.data()[i]).margin(1e-6));
    REQUIRE(gy[i] == Approx(w1.data()[i]).margin(1e-6));
  }
  // both operands one tensor: the adopted gradient takes the second contribution onto itself
  Tensor z = testing::randn({5}, 25).set_requires_grad();
  Tensor u = scale(z, 1.f);
  Tensor seed = testing::randn({5}, 26);
  backward(add(u, u), seed);
  for (int64_t i = 0; i < 5; ++i) REQUIRE(z.grad().data()[i] == Approx(2 * seed.data()[i]).margin(1e-6));
  // adoption only where t has no gradient yet and g is of its shape
  Tensor t = Tensor::zeros({3}).set_requires_grad();
  REQUIRE_FALSE(adopt_grad(t, Tensor::ones({4})));
  REQUIRE(adopt_grad(t, Tensor::ones({3})));
  REQUIRE_FALSE(adopt_grad(t, Tensor::ones({3})));
}
