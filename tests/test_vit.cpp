// The ViT: patch layout, gradients, every attention variant under the bidirectional mask, the
// all-query sink statistics, and a short training run of the ViT task on synthetic images.
#include <catch2/catch.hpp>
#include <cmath>
#include <numeric>

#include "engine/optim.h"
#include "models/vit.h"
#include "models/statistics.h"
#include "tests/gradcheck.h"
#include "train/config.h"
#include "train/task.h"

using namespace sl;
using namespace sl::models;

namespace {

ViTConfig tiny_vit() {
  ViTConfig c;
  c.image_size = 6, c.patch = 3, c.channels = 2, c.classes = 3, c.registers = 2;
  c.d_model = 8, c.n_layers = 1, c.n_heads = 2, c.d_ff = 10;
  c.init_std = 0.3f;
  return c;
}

}  // namespace

TEST_CASE("vit: patchify cuts row-major patches flattened channel-major", "[vit]") {
  ParamStore ps;
  ViT vit(tiny_vit(), ps);
  std::vector<float> v(2 * 6 * 6);
  std::iota(v.begin(), v.end(), 0.f);  // pixel (c, y, x) = c*36 + y*6 + x
  Tensor p = vit.patchify(Tensor::from({1, 2, 6, 6}, v));
  REQUIRE(p.shape() == Shape{1, 4, 18});
  // Patch 1 is row 0, column 1 (x in 3..5); element (c, dy, dx) at c*9 + dy*3 + dx.
  CHECK(p.data()[1 * 18 + 0] == 3.f);
  CHECK(p.data()[1 * 18 + 4] == 6 + 4.f);           // c 0, dy 1, dx 1 -> y 1, x 4
  CHECK(p.data()[2 * 18 + 9] == 36 + 18.f);         // patch 2 = row 1, col 0; c 1 -> y 3, x 0
  CHECK(p.data()[3 * 18 + 17] == 36 + 5 * 6 + 5.f);  // last element of the last patch
}

TEST_CASE("vit: gradients of the whole model match finite differences", "[vit]") {
  for (std::string pool : {"cls", "mean"}) {
    ViTConfig c = tiny_vit();
    c.pool = pool;
    c.pos = pool == "cls" ? "learned" : "sinusoidal";
    ParamStore ps;
    ViT vit(c, ps);
    Rng rng(1);
    ps.finalize(rng);
    std::vector<Tensor> inputs{testing::randn({2, 2, 6, 6}, 3)};
    // The key bias is left out: softmax is invariant to adding q.b_k to a whole row, so its
    // gradient is zero in exact arithmetic and round-off in float32.
    for (auto& p : ps.params())
      if (p.name.find("attn.bk") == std::string::npos) inputs.push_back(p.value);
    CHECK(testing::gradcheck([&](const std::vector<Tensor>& in) { return vit.forward(in[0]).logits; }, inputs) < 1e-3);
  }
}

TEST_CASE("vit: every attention variant runs bidirectionally and its alpha is over all queries", "[vit]") {
  std::vector<std::function<void(AttentionConfig&)>> variants = {
      [](AttentionConfig&) {},
      [](AttentionConfig& a) { a.kernel = "sigmoid"; },
      [](AttentionConfig& a) { a.kernel = "elu_plus_one", a.normalize = true; },
      [](AttentionConfig& a) { a.kernel = "linear", a.normalize = true; },
      [](AttentionConfig& a) { a.kernel = "mlp"; },
      [](AttentionConfig& a) { a.kernel = "relu"; },
      [](AttentionConfig& a) { a.off_by_one = true; },
      [](AttentionConfig& a) { a.sink_logit = true; },
      [](AttentionConfig& a) { a.kv_bias = true; },
      [](AttentionConfig& a) { a.gate = "headwise", a.qk_norm = true; },
  };
  for (size_t v = 0; v < variants.size(); ++v) {
    ViTConfig c = tiny_vit();
    variants[v](c.attn);
    ParamStore ps;
    ViT vit(c, ps);
    Rng rng(2);
    ps.finalize(rng);
    ModelOutput out = vit.forward(testing::randn({3, 2, 6, 6}, 5), CaptureRequest{});
    const Tensor& logits = out.logits;
    const Capture& cap = *out.capture;
    REQUIRE(logits.shape() == Shape{3, 3});
    for (float x : logits.to_vector()) CHECK(std::isfinite(x));
    Tensor A = cap.attn[0].probs.contiguous();
    const int64_t T = vit.config().tokens(), slots = cap.attn[0].slot_offset;
    REQUIRE(A.size(2) == T);
    // Bidirectional: the last key is seen by the first query.
    if (c.attn.kernel == "softmax") CHECK(A.data()[slots + T - 1] > 0.f);
    StatsOptions opt;
    opt.first_k = 4, opt.vit = true, opt.first_patch = vit.config().first_patch();
    StatsInput in(cap.attn, cap.hidden, {}, opt);
    CHECK(in.queries() == 1 + 2 + 4);
    const std::vector<float> alpha = compute("vit/alpha", in);
    // alpha_j = mean over queries of A[i, j]; check one entry against the weights directly.
    double a = 0;
    for (int64_t i = 0; i < T; ++i)
      for (int64_t b = 0; b < 3; ++b) a += A.data()[((b * 2 + 1) * T + i) * A.size(3) + slots + 4] / (3.0 * T);
    CHECK(alpha[1 * T + 4] == Approx(a).margin(1e-6));
    if (c.attn.kernel == "softmax" && !c.attn.off_by_one && !c.attn.sink_logit && !c.attn.kv_bias) {
      // Rows sum to 1, so the importances of all tokens sum to 1 per head.
      double total = 0;
      for (int64_t j = 0; j < T; ++j) total += alpha[j];
      CHECK(total == Approx(1.0).epsilon(1e-5));
      CHECK(compute("attn/alpha", in)[0] == alpha[0]);
    }
  }
}

TEST_CASE("vit: the task learns synthetic images and logs accuracy and ViT statistics", "[vit]") {
  Config cfg = Config::from_string(
      "model: {type: vit, preset: none, d_model: 32, n_layers: 1, n_heads: 2, d_ff: 48, norm: layernorm, ffn: gelu, bias: true}\n"
      "vit: {patch: 7, registers: 2, augment: true, flip: true}\n"
      "data: {source: synthetic_images, augment_crop: 1}\n"
      "train: {lr: 3.0e-3}\n"
      "stats: {probe_batch: 4, first_k: 4}\n");
  ParamStore ps;
  auto task = train::make_task(cfg, ps);  // parameters initialised from train.seed (0)
  CHECK(task->tokens_per_sequence() == 1 + 2 + 16);
  const double before = task->evaluate(4, 64).at(1).second;
  AdamW opt(ps, AdamWConfig{0.9f, 0.95f, 1e-8f, 0.f});
  for (int step = 0; step < 60; ++step) {
    ps.zero_grad();
    task->train_loss(32, false).loss.backward();
    opt.step(3e-3f);
  }
  auto metrics = task->evaluate(4, 64);
  REQUIRE(metrics.size() == 2);
  CHECK(metrics[0].first == "val/loss");
  CHECK(metrics[1].first == "val/accuracy");
  CHECK(metrics[1].second > 0.6);
  CHECK(metrics[1].second > before + 0.2);

  std::vector<train::LogRow> rows = task->probe_stats();
  auto find = [&](const std::string& name) -> const train::LogRow* {
    for (auto& r : rows)
      if (r.name == name) return &r;
    return nullptr;
  };
  REQUIRE(find("vit/alpha") != nullptr);
  CHECK(find("vit/alpha")->shape == Shape{1, 2, 19});
  CHECK(find("vit/sink_rate")->shape == Shape{1, 19});
  CHECK(find("vit/probe_images")->shape == Shape{4, 28, 28});
  CHECK(find("attn/sink_rate") != nullptr);
  CHECK(find("vit/probe_images") != nullptr);
  rows = task->probe_stats();
  CHECK(find("vit/probe_images") == nullptr);  // logged once
  CHECK(task->attention_map(0, 1).shape == Shape{4, 19, 19});

  // Resuming from a data state draws the same batch.
  std::vector<int64_t> state = task->data_state();
  const float l1 = task->train_loss(8, false).loss.item();
  task->set_data_state(state);
  CHECK(task->train_loss(8, false).loss.item() == l1);
}
