#include <catch2/catch.hpp>

#include <map>

#include "engine/ops.h"

using namespace sl;

TEST_CASE("OnLeafGrad reports each leaf once, with its final gradient", "[autograd]") {
  Tensor a = Tensor::from({3}, {1, 2, 3}).set_requires_grad();
  Tensor b = Tensor::from({3}, {0.5f, -1, 2}).set_requires_grad();
  Tensor unused = Tensor::from({3}, {1, 1, 1}).set_requires_grad();
  Tensor constant = Tensor::from({3}, {2, 2, 2});
  // `a` feeds the first op and the last: its gradient is final only after both have run.
  // loss = sum((2ab + c) * a), so d/da = 4ab + c and d/db = 2a^2.
  auto loss = [&] { return sum(mul(add(scale(mul(a, b), 2), constant), a)); };

  std::map<const TensorImpl*, std::vector<std::vector<float>>> seen;
  {
    OnLeafGrad hook([&](const Tensor& leaf) { seen[leaf.impl()].push_back(leaf.grad().to_vector()); });
    loss().backward();
  }
  REQUIRE(seen.size() == 2);  // a and b; not the unused leaf, the constant or any intermediate
  REQUIRE(seen[a.impl()].size() == 1);
  REQUIRE(seen[b.impl()].size() == 1);
  CHECK(seen[a.impl()][0] == std::vector<float>{4, -6, 26});
  CHECK(seen[b.impl()][0] == std::vector<float>{2, 8, 18});
  CHECK(seen[a.impl()][0] == a.grad().to_vector());  // nothing was added after the report
  CHECK(seen[b.impl()][0] == b.grad().to_vector());
  CHECK_FALSE(unused.grad().defined());

  loss().backward();  // the guard is gone: no reports, gradients accumulate as usual
  CHECK(seen[a.impl()].size() == 1);
  CHECK(a.grad().to_vector() == std::vector<float>{8, -12, 52});
}
