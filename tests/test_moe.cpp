// The MoE layer: router + top-k + dispatch against finite differences and a dense reference,
// capacity dropping, the balancing effect of the aux loss, the decoder's router loss and the
// routing statistics. "[.moe-export]" (hidden) writes a case for tests/python/test_moe_torch.py.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "engine/checkpoint.h"
#include "engine/optim.h"
#include "models/decoder.h"
#include "models/moe.h"
#include "models/moe_stats.h"
#include "tests/gradcheck.h"

using namespace sl;
using namespace sl::models;

namespace {

MoEConfig small_moe(const std::string& router, int64_t k, int64_t shared = 0, float capacity = 0.f) {
  MoEConfig c;
  c.expert = FFNConfig{5, 6, "swiglu", false, 0.7f, 0.7f};  // a wide init spreads the router scores
  c.experts = 3, c.top_k = k, c.shared_experts = shared, c.router = router, c.capacity_factor = capacity;
  return c;
}

// y flattened, then aux and z: one tensor for gradcheck.
Tensor moe_outputs(const MoE& moe, const Tensor& x) {
  MoEOutput o = moe.forward(x);
  return concat({o.y.reshape({o.y.numel()}), o.aux_loss.reshape({1}), o.z_loss.reshape({1})}, 0);
}

double moe_gradcheck(const MoEConfig& c) {
  ParamStore ps;
  MoE moe(c, ps, "moe");
  Rng rng(3);
  ps.finalize(rng);
  // x, the router, and one routed and one shared expert (the others are the same code).
  std::vector<Tensor> inputs{testing::randn({7, 5}, 11)};
  for (auto& p : ps.params())
    if (p.name.rfind("moe.experts.", 0) != 0 || p.name.rfind("moe.experts.1.", 0) == 0) inputs.push_back(p.value);
  return testing::gradcheck([&](const std::vector<Tensor>& in) { return moe_outputs(moe, in[0]); }, inputs, 1e-3);
}

}  // namespace

TEST_CASE("moe: router, top-k and dispatch gradients match finite differences", "[moe]") {
  CHECK(moe_gradcheck(small_moe("softmax", 2)) < 1e-3);
  CHECK(moe_gradcheck(small_moe("sigmoid", 2)) < 1e-3);
  CHECK(moe_gradcheck(small_moe("softmax", 1, 1)) < 1e-3);       // k = 1: gate 1, router via aux and z only
  CHECK(moe_gradcheck(small_moe("softmax", 2, 0, 0.6f)) < 1e-3);  // with dropped assignments
}

TEST_CASE("moe: top_k = experts with renormalised softmax gates is the dense mixture", "[moe]") {
  MoEConfig c = small_moe("softmax", 3);
  ParamStore ps;
  MoE moe(c, ps, "moe");
  Rng rng(5);
  ps.finalize(rng);
  Tensor x = testing::randn({2, 3, 5}, 2);
  Tensor y = moe.forward(x).y;
  REQUIRE(y.shape() == Shape{2, 3, 5});
  // sum_e softmax(W_G x)_e FFN_e(x), computed densely.
  Tensor x2 = x.reshape({6, 5});
  Tensor p = softmax(linear(x2, ps.find("moe.router")->value));
  Tensor ref = Tensor::zeros({6, 5});
  for (int e = 0; e < 3; ++e) {
    FFNConfig fc = c.expert;
    ParamStore ps2;
    FFN f(fc, ps2, "f");
    Rng r2(0);
    ps2.finalize(r2);
    for (const char* w : {".w1", ".w2", ".w3"}) {
      Tensor dst = ps2.find(std::string("f") + w)->value, src = ps.find("moe.experts." + std::to_string(e) + w)->value;
      std::copy_n(src.data(), src.numel(), dst.data());
    }
    ref = add(ref, mul(f.forward(x2), slice(p, 1, e, e + 1)));
  }
  std::vector<float> a = y.to_vector(), b = ref.to_vector();
  for (size_t i = 0; i < a.size(); ++i) CHECK(a[i] == Approx(b[i]).margin(1e-6));
}

TEST_CASE("moe: capacity factor drops the lowest-priority assignments", "[moe]") {
  MoEConfig c = small_moe("softmax", 2, 0, 0.5f);  // capacity ceil(0.5 * 7 * 2 / 3) = 3
  ParamStore ps;
  MoE moe(c, ps, "moe");
  Rng rng(3);
  ps.finalize(rng);
  MoECapture cap;
  moe.forward(testing::randn({7, 5}, 11), &cap);
  std::vector<int> assigned(3, 0), load(3, 0);
  for (int a = 0; a < 14; ++a) {
    assigned[cap.choice[a]]++;
    if (cap.kept[a]) load[cap.choice[a]]++;
  }
  int dropped = 0;
  for (int e = 0; e < 3; ++e) {
    CHECK(load[e] == std::min(assigned[e], 3));
    dropped += assigned[e] - load[e];
  }
  CHECK(dropped > 0);
  // Priority: an expert keeps a second choice only if it kept every first choice sent to it.
  for (int e = 0; e < 3; ++e) {
    bool second_kept = false, first_dropped = false;
    for (int n = 0; n < 7; ++n) {
      if (cap.choice[n * 2] == e && !cap.kept[n * 2]) first_dropped = true;
      if (cap.choice[n * 2 + 1] == e && cap.kept[n * 2 + 1]) second_kept = true;
    }
    CHECK(!(second_kept && first_dropped));
  }
}

TEST_CASE("moe: the load-balancing loss pushes an imbalanced router toward balance", "[moe]") {
  MoEConfig c;
  c.expert = FFNConfig{9, 4, "relu", false, 0.02f, 0.02f};
  c.experts = 4, c.top_k = 1;
  ParamStore ps;
  MoE moe(c, ps, "moe");
  Rng rng(1);
  ps.finalize(rng);
  // Every token has a large positive mean, and expert 0's router row points along it.
  Tensor router = ps.find("moe.router")->value;
  for (int j = 0; j < 9; ++j) router.data()[j] = 1.f;
  Tensor x = add_scalar(testing::randn({61, 9}, 4), 1.f);
  auto max_share = [&] {
    MoECapture cap;
    moe.forward(x, &cap);
    std::vector<int> load(4, 0);
    for (int32_t e : cap.choice) load[e]++;
    return *std::max_element(load.begin(), load.end()) / 61.0;
  };
  const double before = max_share();
  float aux_before = moe.forward(x).aux_loss.item(), aux_after = 0;
  SGD sgd(ps, SGDConfig{0.f, 0.f});
  for (int step = 0; step < 200; ++step) {
    ps.zero_grad();
    Tensor aux = moe.forward(x).aux_loss;
    aux_after = aux.item();
    aux.backward();
    sgd.step(0.5f);
  }
  const double after = max_share();
  CHECK(before == 1.0);
  CHECK(after < 0.45);          // balanced is 0.25
  CHECK(aux_before > 1.5f);     // aux = 1 when balanced, up to E when collapsed
  CHECK(aux_after < 1.1f);
}

TEST_CASE("moe: the decoder returns the router loss and, when asked, routing statistics", "[moe]") {
  DecoderConfig c;
  c.vocab_size = 13, c.d_model = 12, c.n_layers = 3, c.n_heads = 2, c.d_ff = 10, c.context = 9;
  c.moe.experts = 4, c.moe.top_k = 2, c.moe_every = 2;
  ParamStore ps;
  Decoder dec(c, ps);
  Rng rng(0);
  ps.finalize(rng);
  CHECK(!dec.is_moe_block(0));
  CHECK(dec.is_moe_block(1));
  CHECK(!dec.is_moe_block(2));
  CHECK(ps.find("blocks.1.moe.experts.3.w1") != nullptr);
  CHECK(ps.find("blocks.0.ffn.w1") != nullptr);

  std::vector<int32_t> tokens(2 * 9);
  for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = (int32_t)(i * 7 % 13);
  ModelOutput out = dec.forward(tokens, 2, 9, CaptureRequest{});
  const Capture& cap = *out.capture;
  REQUIRE(out.aux_loss.defined());
  // One MoE block: 0.01 * aux + 0.001 * z.
  CHECK(out.aux_loss.item() == Approx(0.01f * cap.moe[1].aux_loss + 0.001f * cap.moe[1].z_loss).epsilon(1e-5));
  CHECK(!dec.forward(tokens, 2, 9).capture);  // nothing is captured unless asked for

  MoEStats s = compute_moe_stats(cap.moe, cap.attn, 0.3f);
  REQUIRE(s.layers == 1);
  REQUIRE(s.experts == 4);
  CHECK(s.block[0] == 1.f);
  float total = 0, first = 0;
  for (int e = 0; e < 4; ++e) total += s.tokens_per_expert[e], first += s.first_token_experts[e];
  CHECK(total == 2 * 9 * 2);
  CHECK(first == Approx(1.f));
  CHECK(s.router_entropy[0] > 0.f);
  CHECK(s.router_entropy[0] <= std::log(4.f) + 1e-5f);
  CHECK(s.dropped[0] == 0.f);
  // Under causal attention token 0 receives all of query 0's attention, so alpha_0 >= 1/T and
  // at init (near-uniform rows) it is a sink at eps = 0.1 in every sequence.
  MoEStats s01 = compute_moe_stats(cap.moe, cap.attn, 0.1f);
  CHECK(s01.sink_tokens[0] > 0.f);
  float sink_sum = 0;
  for (int e = 0; e < 4; ++e) sink_sum += s01.sink_token_experts[e];
  CHECK(sink_sum == Approx(1.f));
}

TEST_CASE("moe stats: the first token's expert, its router entropy and what else that expert serves", "[moe]") {
  // 2 sequences of 3 tokens, 4 experts, top-1. Both first tokens go to expert 2 with a one-hot
  // router (entropy 0); the 4 other tokens have uniform scores (entropy log 4) and go to experts
  // 0, 1, 2, 3: expert 2 serves 1 of the 4 other assignments.
  MoECapture m;
  m.tokens = 6, m.experts = 4, m.top_k = 1;
  m.choice = {2, 0, 1, 2, 2, 3};
  m.kept.assign(6, 1);
  m.output_norm.assign(6, 1.f);
  for (int n = 0; n < 6; ++n)
    for (int e = 0; e < 4; ++e) m.scores.push_back(n % 3 == 0 ? (e == 2 ? 1.f : 0.f) : 0.25f);
  AttentionCapture a;
  a.probs = Tensor::zeros({2, 1, 3, 3});
  for (int b = 0; b < 2; ++b)
    for (int t = 0; t < 3; ++t) a.probs.data()[(b * 3 + t) * 3] = 1.f;  // every query on token 0
  MoEStats s = compute_moe_stats({m}, {a}, 0.3f);
  REQUIRE(s.layers == 1);
  CHECK(s.first_token_experts == std::vector<float>{0, 0, 1, 0});
  CHECK(s.router_entropy_first[0] == Approx(0.f).margin(1e-6));
  CHECK(s.router_entropy[0] == Approx(4 * std::log(4.f) / 6));
  CHECK(s.first_expert_rest_share[0] == Approx(0.25f));
  CHECK(s.sink_token_experts == std::vector<float>{0, 0, 1, 0});  // the sinks are the first tokens
  CHECK(s.sink_tokens[0] == Approx(100.f / 3));
}

// Writes <SINKLAB_EXPORT_DIR>/moe_<router>_k<k>/ {tensors.h5, case.txt} for the PyTorch check.
TEST_CASE("moe: export cases for the PyTorch cross-check", "[.moe-export]") {
  const char* dir = std::getenv("SINKLAB_EXPORT_DIR");
  REQUIRE(dir != nullptr);
  struct Case { std::string router; int64_t k, shared; float capacity; bool renormalize; };
  for (const Case& cs : {Case{"softmax", 2, 0, 0.f, true}, Case{"sigmoid", 2, 1, 0.f, true}, Case{"softmax", 1, 0, 0.f, false},
                         Case{"softmax", 2, 0, 0.7f, true}}) {
    MoEConfig c;
    c.expert = FFNConfig{6, 7, "swiglu", false, 0.5f, 0.5f};
    c.experts = 5, c.top_k = cs.k, c.shared_experts = cs.shared, c.router = cs.router;
    c.capacity_factor = cs.capacity, c.renormalize = cs.renormalize;
    ParamStore ps;
    MoE moe(c, ps, "moe");
    Rng rng(7);
    ps.finalize(rng);
    Tensor x = testing::randn({11, 6}, 3).set_requires_grad(true);
    MoEOutput o = moe.forward(x);
    Tensor w = testing::randn({11, 6}, 9);
    // loss = sum(w * y) + 0.3 aux + 0.7 z: every output gets a gradient.
    Tensor loss = add(add(sum(mul(o.y, w)), scale(o.aux_loss, 0.3f)), scale(o.z_loss, 0.7f));
    loss.backward();
    std::map<std::string, Tensor> out{{"x", x.detach()}, {"w", w}, {"y", o.y.detach()}, {"aux", o.aux_loss.detach()},
                                      {"z", o.z_loss.detach()}, {"grad/x", x.grad()}};
    for (auto& p : ps.params()) out["param/" + p.name] = p.value.detach(), out["grad/" + p.name] = p.value.grad();
    const std::string path = std::string(dir) + "/moe_" + cs.router + "_k" + std::to_string(cs.k) + "_s" +
                             std::to_string(cs.shared) + (cs.capacity > 0 ? "_cap" : "");
    std::filesystem::create_directories(path);
    write_tensors_h5(path + "/tensors.h5", out);
    std::ofstream(path + "/case.txt") << "router=" << cs.router << "\ntop_k=" << cs.k << "\nexperts=" << c.experts
                                      << "\nshared=" << cs.shared << "\ncapacity_factor=" << cs.capacity
                                      << "\nrenormalize=" << cs.renormalize << "\n";
  }
}
