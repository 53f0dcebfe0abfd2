#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <limits>

#include "engine/error.h"
#include "engine/optim.h"
#include "engine/schedule.h"

using namespace sl;
using Catch::Matchers::Contains;

namespace {

// A finalized store with parameters a[2] (decayed), b[3] (not decayed) and frozen c[1].
struct Fixture {
  ParamStore store;
  Fixture() {
    store.add("a", {2}, Init::zeros(), true);
    store.add("b", {3}, Init::zeros(), false);
    store.add("c", {1}, Init::zeros(), true);
    Rng rng(0);
    store.finalize(rng);
    store.params()[2].trainable = false;
    set("a", {1.0f, -2.0f});
    set("b", {0.5f, 0.3f, -1.0f});
    set("c", {7.0f});
  }
  const Param& param(const std::string& name) { return *store.find(name); }
  void set(const std::string& name, std::vector<float> values) {
    std::memcpy(store.values() + param(name).offset, values.data(), values.size() * sizeof(float));
  }
  void grad(const std::string& name, std::vector<float> g) {
    std::memcpy(store.grads() + param(name).offset, g.data(), g.size() * sizeof(float));
  }
  std::vector<float> values(const std::string& name) { return param(name).value.to_vector(); }
  std::vector<float> grads(const std::string& name) { return param(name).value.grad().to_vector(); }
};

void require_near(const std::vector<float>& got, const std::vector<double>& want, double tol = 1e-6) {
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < want.size(); ++i) REQUIRE(got[i] == Approx(want[i]).margin(tol));
}

}  // namespace

TEST_CASE("AdamW matches two hand-computed steps, decaying only weight_decay params", "[optim]") {
  Fixture f;
  AdamW opt(f.store, {0.9f, 0.999f, 1e-8f, 0.1f});
  // Step 1: bias correction makes the update g/|g|, so a = a - lr (sign(g) + 0.1 a), b = b - lr sign(g).
  f.grad("a", {0.5f, -0.25f});
  f.grad("b", {2.0f, 0.0f, -4.0f});
  f.grad("c", {3.0f});
  opt.step(0.01f);
  REQUIRE(opt.steps() == 1);
  require_near(f.values("a"), {0.989, -1.988});
  require_near(f.values("b"), {0.49, 0.3, -0.99});
  REQUIRE(f.values("c") == std::vector<float>{7.0f});
  // Step 2 (values from an independent double-precision evaluation of the formulas):
  // a0: m = 0.145, v = 0.00124975, m^ = 0.145/0.19, v^ = v/0.001999.
  f.grad("a", {1.0f, 0.5f});
  f.grad("b", {-1.0f, 0.0f, 3.0f});
  opt.step(0.01f);
  require_near(f.values("a"), {0.978359180063651, -1.9896730355773546});
  require_near(f.values("b"), {0.48733662967024316, 0.3, -0.9891067499534736});
  REQUIRE(f.values("c") == std::vector<float>{7.0f});
}

TEST_CASE("AdamW resumed from its state and step count continues bit for bit", "[optim]") {
  Fixture f, g;
  AdamW first(f.store, {0.9f, 0.95f, 1e-8f, 0.1f});
  for (int s = 0; s < 3; ++s) {
    f.grad("a", {0.3f * s - 0.2f, 0.7f});
    f.grad("b", {0.1f, -0.4f * s, 2.0f});
    first.step(0.05f);
  }
  // A fresh optimiser on a copy of the parameters, restored through state() and set_steps().
  std::memcpy(g.store.values(), f.store.values(), f.store.flat_size() * sizeof(float));
  AdamW second(g.store, {0.9f, 0.95f, 1e-8f, 0.1f});
  auto saved = first.state(), restored = second.state();
  REQUIRE(saved.size() == 2);
  REQUIRE(saved[0].first == "m");
  REQUIRE(saved[1].first == "v");
  REQUIRE(saved[0].second.shape() == Shape{f.store.flat_size()});
  for (size_t i = 0; i < saved.size(); ++i)
    std::memcpy(restored[i].second.data(), saved[i].second.data(), saved[i].second.numel() * sizeof(float));
  second.set_steps(first.steps());
  for (Fixture* x : {&f, &g}) {
    x->grad("a", {-1.5f, 0.25f});
    x->grad("b", {0.5f, 0.5f, -0.5f});
  }
  first.step(0.05f);
  second.step(0.05f);
  REQUIRE(std::memcmp(f.store.values(), g.store.values(), f.store.flat_size() * sizeof(float)) == 0);
  // Without the step count the bias correction differs, and so do the values.
  Fixture h;
  std::memcpy(h.store.values(), g.store.values(), g.store.flat_size() * sizeof(float));
  AdamW stale(h.store, {0.9f, 0.95f, 1e-8f, 0.1f});
  auto st = stale.state(), now = second.state();
  for (size_t i = 0; i < st.size(); ++i)
    std::memcpy(st[i].second.data(), now[i].second.data(), now[i].second.numel() * sizeof(float));
  for (Fixture* x : {&g, &h}) x->grad("a", {1.0f, 1.0f});
  second.step(0.05f);
  stale.step(0.05f);
  REQUIRE(g.values("a") != h.values("a"));
}

TEST_CASE("SGD with momentum matches two hand-computed steps", "[optim]") {
  Fixture f;
  SGD opt(f.store, {0.9f, 0.1f});
  REQUIRE(opt.state().size() == 1);
  // Step 1: buffer = g; a -= 0.1 (g + 0.1 a); b -= 0.1 g.
  f.grad("a", {0.5f, 1.0f});
  f.grad("b", {1.0f, 0.0f, -2.0f});
  f.grad("c", {5.0f});
  opt.step(0.1f);
  require_near(f.values("a"), {0.94, -2.08});
  require_near(f.values("b"), {0.4, 0.3, -0.8});
  // Step 2: buffer = 0.9 g1 + g2 = a: [1.45, 0.9], b: [-0.1, 0, 1.2].
  f.grad("a", {1.0f, 0.0f});
  f.grad("b", {-1.0f, 0.0f, 3.0f});
  opt.step(0.1f);
  require_near(f.values("a"), {0.94 - 0.1 * (1.45 + 0.094), -2.08 - 0.1 * (0.9 - 0.208)});  // 0.7856, -2.1492
  require_near(f.values("b"), {0.41, 0.3, -0.92});
  REQUIRE(f.values("c") == std::vector<float>{7.0f});
  REQUIRE(opt.steps() == 2);
}

TEST_CASE("plain SGD has no state and steps along -lr g", "[optim]") {
  Fixture f;
  SGD opt(f.store, {});
  REQUIRE(opt.state().empty());
  f.grad("b", {1.0f, 2.0f, 3.0f});
  opt.step(0.5f);
  require_near(f.values("b"), {0.0, -0.7, -2.5});
}

TEST_CASE("clip_grad_norm measures trainable gradients and scales them to max_norm", "[optim]") {
  Fixture f;
  f.grad("a", {3.0f, 4.0f});
  f.grad("b", {0.0f, 12.0f, 0.0f});
  f.grad("c", {100.0f});  // frozen: neither counted nor scaled
  SECTION("measure only") {
    REQUIRE(clip_grad_norm(f.store, 0.f) == Approx(13.0));
    REQUIRE(f.grads("a") == std::vector<float>{3.0f, 4.0f});
  }
  SECTION("no change below the limit") {
    REQUIRE(clip_grad_norm(f.store, 20.f) == Approx(13.0));
    REQUIRE(f.grads("b") == std::vector<float>{0.0f, 12.0f, 0.0f});
  }
  SECTION("scaled above it") {
    REQUIRE(clip_grad_norm(f.store, 6.5f) == Approx(13.0));
    require_near(f.grads("a"), {1.5, 2.0});
    require_near(f.grads("b"), {0.0, 6.0, 0.0});
    REQUIRE(f.grads("c") == std::vector<float>{100.0f});
    REQUIRE(clip_grad_norm(f.store, 0.f) == Approx(6.5).epsilon(1e-6));
  }
  SECTION("a non-finite norm is reported and leaves gradients alone") {
    f.grad("b", {0.0f, std::numeric_limits<float>::quiet_NaN(), 0.0f});
    REQUIRE(std::isnan(clip_grad_norm(f.store, 1.f)));
    REQUIRE(f.grads("a") == std::vector<float>{3.0f, 4.0f});
  }
}

TEST_CASE("clip_grad_norm sums large parameters in parallel like a serial double sum", "[optim]") {
  ParamStore store;
  store.add("w", {70001}, Init::zeros(), true);
  Rng rng(1);
  store.finalize(rng);
  double want = 0;
  for (int64_t i = 0; i < 70001; ++i) {
    store.grads()[i] = (float)std::sin(0.01 * i);
    want += (double)store.grads()[i] * store.grads()[i];
  }
  REQUIRE(clip_grad_norm(store, 0.f) == Approx(std::sqrt(want)).epsilon(1e-6));
}

TEST_CASE("learning-rate schedules at known steps", "[optim][schedule]") {
  LrSchedule s{LrSchedule::Cosine, 1.0f, 10, 110, 0.1f};
  REQUIRE(s.at(0) == Approx(0.1));    // peak * 1 / warmup
  REQUIRE(s.at(4) == Approx(0.5));
  REQUIRE(s.at(9) == Approx(1.0));    // warmup ends at peak
  REQUIRE(s.at(10) == Approx(1.0));   // decay starts at peak
  REQUIRE(s.at(35) == Approx(0.1 + 0.9 * (1 + std::cos(M_PI / 4)) / 2));
  REQUIRE(s.at(60) == Approx(0.55));  // midpoint: (peak + min) / 2
  REQUIRE(s.at(110) == Approx(0.1));  // end: min
  REQUIRE(s.at(1000) == Approx(0.1));
  s.kind = LrSchedule::Linear;
  REQUIRE(s.at(9) == Approx(1.0));
  REQUIRE(s.at(35) == Approx(0.775));
  REQUIRE(s.at(60) == Approx(0.55));
  REQUIRE(s.at(110) == Approx(0.1));
  s.kind = LrSchedule::Constant;
  REQUIRE(s.at(0) == Approx(0.1));
  REQUIRE(s.at(10) == Approx(1.0));
  REQUIRE(s.at(1000) == Approx(1.0));
  LrSchedule no_warmup{LrSchedule::Cosine, 3e-4f, 0, 100, 0.f};
  REQUIRE(no_warmup.at(0) == Approx(3e-4));
  REQUIRE(no_warmup.at(50) == Approx(1.5e-4));
  REQUIRE(no_warmup.at(100) == 0.f);
  REQUIRE_THROWS_WITH((LrSchedule{LrSchedule::Cosine, 1.f, 10, 100, 1.5f}.at(3)), Contains("min_ratio"));
}
