// The kernel declarations (engine/attention_kernels.cpp) on hand-made scores, and the config's
// choices read from them.
#include <catch2/catch.hpp>
#include <cmath>

#include "engine/attention_kernels.h"
#include "engine/ops.h"
#include "tests/gradcheck.h"
#include "tests/error_of.h"
#include "train/config.h"

using namespace sl;
using sl::testing::error_of;

namespace {

// W of one kernel for scores [1, 1, T, S] under `mask` ([T, S], 1 = blocked).
std::vector<float> weights(const std::string& kernel, const std::vector<float>& scores, int64_t T, int64_t S,
                           const std::vector<uint8_t>& mask) {
  KernelInputs in{mask, {T, S}, 0.f, Tensor(), {}};
  return attention_kernel(kernel).composed(Tensor::from({1, 1, T, S}, scores), in).to_vector();
}

}  // namespace

TEST_CASE("softpick leaves mass unassigned where e^s - 1 <= 0", "[attention][kernels]") {
  const std::vector<uint8_t> open(3, 0);
  // e^s - 1 = [0, 1, 2]: P = [0, 1/3, 2/3]
  std::vector<float> p = weights("softpick", {0.f, std::log(2.f), std::log(3.f)}, 1, 3, open);
  CHECK(p[0] == Approx(0.f).margin(1e-6));
  CHECK(p[1] == Approx(1.f / 3).epsilon(1e-5));
  CHECK(p[2] == Approx(2.f / 3).epsilon(1e-5));
  // e^s - 1 = [-0.5, 2, ...]: the negative one counts in the denominator only; the third is masked
  p = weights("softpick", {std::log(0.5f), std::log(3.f), 50.f}, 1, 3, {0, 0, 1});
  CHECK(p[0] == 0.f);
  CHECK(p[1] == Approx(2.f / 2.5f).epsilon(1e-5));
  CHECK(p[2] == 0.f);
  // scores far past e^88 stay finite: P = [0, ~1] for [0, 200]
  p = weights("softpick", {0.f, 200.f}, 1, 2, {0, 0});
  CHECK(p[0] == Approx(0.f).margin(1e-6));
  CHECK(p[1] == Approx(1.f).epsilon(1e-5));
}

TEST_CASE("pointwise kernels on hand-made scores", "[attention][kernels]") {
  const std::vector<uint8_t> mask{0, 0, 1};
  std::vector<float> w = weights("relu", {-1.f, 2.f, 3.f}, 1, 3, mask);
  CHECK(w == std::vector<float>{0.f, 2.f, 0.f});
  w = weights("sigmoid", {0.f, 2.f, 3.f}, 1, 3, mask);  // bias 0
  CHECK(w[0] == Approx(0.5f));
  CHECK(w[1] == Approx(1.f / (1.f + std::exp(-2.f))));
  CHECK(w[2] == 0.f);
  w = weights("softmax", {0.f, std::log(3.f), 9.f}, 1, 3, mask);
  CHECK(w[0] == Approx(0.25f));
  CHECK(w[1] == Approx(0.75f));
  CHECK(w[2] == 0.f);
}

TEST_CASE("every fused row weighs a key at -inf exactly 0 and the others as without it", "[attention][kernels]") {
  // The tiled attention core rounds a row's visible keys out to whole vectors, the extra keys at -inf.
  for (const AttentionKernel& k : attention_kernels()) {
    if (!k.fused_row) continue;
    INFO(k.name);
    std::vector<float> s{0.3f, -1.2f, 2.f, 0.7f}, w(6), padded{-INFINITY, 0.3f, -1.2f, 2.f, 0.7f, -INFINITY}, pw(6);
    const float sum = k.fused_row(s.data(), w.data(), 0, 4, -0.5f);
    const float padded_sum = k.fused_row(padded.data(), pw.data(), 0, 6, -0.5f);
    const std::vector<float>& kept = k.distribution ? s : w;  // a distribution writes P into the scores
    const std::vector<float>& padded_kept = k.distribution ? padded : pw;
    CHECK(padded_kept[0] == 0.f);
    CHECK(padded_kept[5] == 0.f);
    for (int j = 0; j < 4; ++j) CHECK(padded_kept[j + 1] == kept[j]);
    CHECK(padded_sum == sum);
  }
}

TEST_CASE("the config accepts every declared kernel and lists them for a bad one", "[attention][kernels][config]") {
  for (const std::string& name : attention_kernel_names())
    CHECK(error_of([&] { Config::from_string("", {"attention.kernel=" + name}); }) == "no error");
  const std::string err = error_of([] { Config::from_string("", {"attention.kernel=softmaxx"}); });
  for (const std::string& name : attention_kernel_names()) CHECK_THAT(err, Catch::Matchers::Contains(name));
  CHECK_THAT(error_of([] { attention_kernel("nope"); }), Catch::Matchers::Contains("softpick"));
}

TEST_CASE("every kernel's composed weights have correct gradients away from their kinks", "[attention][kernels][grad]") {
  // Scores [1, 2, 3, 3] at least 0.2 from 0 (where relu and softpick bend), a causal mask.
  const std::vector<float> s0{0.9f, -0.4f, 1.3f, -0.7f, 0.5f, 0.3f, 1.1f, -1.2f, 0.6f,
                              -0.5f, 0.8f, 0.25f, 0.4f, -0.9f, 0.7f, 1.4f, -0.3f, 0.35f};
  const std::vector<uint8_t> causal{0, 1, 1, 0, 0, 1, 0, 0, 0};
  for (const AttentionKernel& k : attention_kernels()) {
    std::vector<Tensor> inputs{Tensor::from({1, 2, 3, 3}, s0)};
    KernelInputs in{causal, {3, 3}, -0.3f, Tensor(), {}};
    for (const KernelParam& p : k.params)
      inputs.push_back(testing::randn(p.shape(3), 11 + inputs.size()));
    auto f = [&](const std::vector<Tensor>& x) {
      in.params.assign(x.begin() + 1, x.end());
      return k.composed(x[0], in);
    };
    INFO(k.name);
    CHECK(testing::gradcheck(f, inputs, 1e-3) < 1e-3);
  }
}
