// stats.source = train: the statistics read from the leading block of a training forward equal
// those of a separate forward of just that block (the probe), and configs where that equivalence
// fails are refused.
#include <catch2/catch.hpp>
#include <algorithm>
#include <cmath>
#include <cstring>

#include "models/decoder.h"
#include "tests/error_of.h"
#include "models/statistics.h"
#include "engine/threads.h"
#include "train/config.h"
#include "train/stats_rows.h"
#include "train/task.h"

using namespace sl;
using namespace sl::models;

namespace {

double max_abs_diff(const Tensor& a, const Tensor& b) {
  REQUIRE(a.shape() == b.shape());
  std::vector<float> x = a.to_vector(), y = b.to_vector();
  double d = 0;
  for (size_t i = 0; i < x.size(); ++i) d = std::max(d, (double)std::abs(x[i] - y[i]));
  return d;
}

double max_abs_diff(const std::vector<float>& x, const std::vector<float>& y) {
  REQUIRE(x.size() == y.size());
  double d = 0;
  for (size_t i = 0; i < x.size(); ++i) d = std::max(d, (double)std::abs(x[i] - y[i]));
  return d;
}

using sl::testing::error_of;

}  // namespace

TEST_CASE("the leading block of a training forward is the probe forward of those tokens", "[stats-source]") {
  DecoderConfig c;
  c.vocab_size = 37, c.d_model = 12, c.n_layers = 3, c.n_heads = 2, c.d_ff = 10, c.context = 13;
  c.init_std = 0.3f;  // far from uniform attention, so that the comparison means something
  std::string variant = GENERATE("fused softmax", "kv-bias sigmoid + sink token + learned positions",
                                 "moe + relative positions", "sliding + alibi", "prefix within the block",
                                 "fused causal across query blocks", "fused sliding across query blocks");
  // Past 64 positions the fused core runs its queries in blocks of 64, each against its own span
  // of keys, and assembles only the captured rows: the leading 70 x 70 block cuts across both.
  const bool long_ = variant.find("across query blocks") != std::string::npos;
  if (long_) c.context = 150;
  if (variant == "fused sliding across query blocks") c.attn.mask = "sliding", c.attn.window = 5;
  if (variant == "kv-bias sigmoid + sink token + learned positions") {
    c.attn.kernel = "sigmoid", c.attn.sigmoid_bias = -1.5f, c.attn.kv_bias = true;
    c.sink_token = true, c.pos = "learned";
  }
  if (variant == "moe + relative positions") {
    c.moe.experts = 3, c.moe.top_k = 2, c.moe_every = 2;
    c.pos = "relative";
    c.attn.relative_buckets = 8, c.attn.relative_max_distance = 16;
  }
  if (variant == "sliding + alibi") c.attn.mask = "sliding", c.attn.window = 3, c.pos = "alibi";
  if (variant == "prefix within the block") c.attn.mask = "prefix", c.attn.prefix_len = 4;
  ParamStore ps;
  Decoder dec(c, ps);
  Rng rng(5);
  ps.finalize(rng);
  for (auto& p : ps.params())  // zero-initialised parameters (biases, slots, tables) get values too
    for (int64_t i = 0; i < p.value.numel(); ++i) p.value.data()[i] += 0.2f * rng.normal();

  const int64_t B = 3, T = long_ ? 150 : 13, R = 2, P = long_ ? 70 : 7;  // the batch, and its leading R x P block
  std::vector<int32_t> tokens(B * T), probe(R * P);
  for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = (int32_t)((i * 11 + 3) % 37);
  for (int64_t b = 0; b < R; ++b) std::copy_n(tokens.begin() + b * T, P, probe.begin() + b * P);

  // a training forward (gradients on), capturing only the block
  ModelOutput out = dec.forward(tokens, B, T, CaptureRequest{R, P});
  REQUIRE(out.logits.requires_grad());
  const Capture& train = *out.capture;
  // The probe: a forward of the block's tokens alone, through the composed attention core, so
  // that a fault in how the fused core cuts its capture cannot cancel out.
  DecoderConfig rc = c;
  rc.attn.fused_core = false;
  ParamStore rps;
  Decoder composed(rc, rps);
  rps.finalize(rng);
  for (size_t i = 0; i < ps.params().size(); ++i)
    std::copy_n(ps.params()[i].value.data(), ps.params()[i].value.numel(), rps.params()[i].value.data());
  Capture ref;
  {
    NoGrad ng;
    ref = *composed.forward(probe, R, P, CaptureRequest{}).capture;
  }

  const double tol = 1e-6;
  const int64_t extra = c.sink_token ? 1 : 0, slots = c.attn.kv_bias ? 1 : 0;
  for (int64_t l = 0; l < c.n_layers; ++l) {
    INFO(variant << ", layer " << l);
    const AttentionCapture &a = train.attn[l], &r = ref.attn[l];
    CHECK(a.probs.shape() == Shape{R, c.n_heads, P + extra, slots + P + extra});
    CHECK(a.slot_offset == r.slot_offset);
    // the fused core's e^x is within 2.5e-7 of the composed one's, by layer 3 a few 1e-6 apart
    CHECK(max_abs_diff(a.probs, r.probs) < tol * 3);
    // keys and values reach 4: the two forwards' products differ in shape, so their roundings
    // differ by a few ulps there
    CHECK(max_abs_diff(a.keys, r.keys) < tol * 10);
    CHECK(max_abs_diff(a.values, r.values) < tol * 10);
    // hidden states of norm 1-10: a few ulps there (up to 1.4e-5 on an AVX2 CPU's kernels, whose
    // products block by their shape differently); a wrong block misses by 1e-2 or more
    CHECK(max_abs_diff(train.hidden[l], ref.hidden[l]) < tol * 30);
  }
  // Every declared statistic of the block, against the probe's. The router losses are of the
  // whole batch, so they are not compared; routing is per token (no capacity).
  StatsOptions opt;
  opt.first_k = 5, opt.eps = {0.1, 0.3}, opt.sink_tokens = extra;
  StatsInput in(train.attn, train.hidden, train.moe, opt), rin(ref.attn, ref.hidden, ref.moe, opt);
  if (c.moe.experts > 0) {
    REQUIRE(in.moe().layers == 1);
    CHECK(train.moe[1].tokens == R * P);
  }
  // Computed as tasks over the threads (the layers', then the statistics'), they are those of one
  // thread, bit for bit.
  const std::vector<train::LogRow> rows = train::statistics_rows(in);
  const int threads = num_threads();
  set_num_threads(1);
  const std::vector<train::LogRow> one = train::statistics_rows(StatsInput(train.attn, train.hidden, train.moe, opt));
  set_num_threads(threads);
  REQUIRE(rows.size() == one.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    INFO(variant << ": " << rows[i].name << " as a task");
    CHECK(rows[i].name == one[i].name);
    CHECK(rows[i].shape == one[i].shape);
    REQUIRE(rows[i].values.size() == one[i].values.size());
    CHECK(std::memcmp(rows[i].values.data(), one[i].values.data(), rows[i].values.size() * sizeof(float)) == 0);
  }
  for (const Statistic& s : statistics()) {
    if (!s.compute || (s.logged && !s.logged(rin)) || s.name == "moe/aux_loss" || s.name == "moe/z_loss") continue;
    INFO(variant << ": " << s.name);
    REQUIRE((!s.logged || s.logged(in)));
    const std::vector<float> got = compute(s, in), want = compute(s, rin);
    if (s.unit == "percent" || s.unit == "count") CHECK(got == want);  // thresholds and counts agree exactly
    else  // norms and magnitudes of hidden states reach 10 (the hidden states agree to tol * 30)
      CHECK(max_abs_diff(got, want) <
            (s.unit == "L2 norm" || s.unit == "magnitude" || s.unit == "ratio" ? tol * 30 : tol));
  }
}

TEST_CASE("a capture of the whole batch is the plain capture", "[stats-source]") {
  DecoderConfig c;
  c.vocab_size = 11, c.d_model = 8, c.n_layers = 2, c.n_heads = 2, c.d_ff = 10, c.context = 9;
  ParamStore ps;
  Decoder dec(c, ps);
  Rng rng(1);
  ps.finalize(rng);
  std::vector<int32_t> tokens(2 * 9);
  for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = (int32_t)(i * 5 % 11);
  const Capture all = *dec.forward(tokens, 2, 9, CaptureRequest{}).capture;
  const Capture bounded = *dec.forward(tokens, 2, 9, CaptureRequest{5, 20}).capture;  // beyond the batch: everything
  CHECK(bounded.attn[1].probs.shape() == Shape{2, 2, 9, 9});
  CHECK(max_abs_diff(all.attn[1].probs, bounded.attn[1].probs) == 0);
  CHECK(max_abs_diff(all.hidden[1], bounded.hidden[1]) == 0);
}

TEST_CASE("the LM task logs the training forward's statistics in the probe's rows", "[stats-source]") {
  const std::string yaml =
      "model: {d_model: 16, n_layers: 2, n_heads: 2, context: 21}\n"
      "data: {source: random, vocab: 29}\n"
      "train: {batch_size: 3}\n"
      "stats: {probe_batch: 2, probe_len: 9, first_k: 4, source: train, maps: true}\n";
  Config cfg = Config::from_string(yaml);
  ParamStore ps;
  auto task = train::make_task(cfg, ps);
  std::vector<train::LogRow> rows = task->train_loss(3, true).stats, probe = task->probe_stats();
  REQUIRE(rows.size() == probe.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    INFO(probe[i].name);
    CHECK(rows[i].name == probe[i].name);
    CHECK(rows[i].shape == probe[i].shape);
    CHECK(rows[i].values.size() == probe[i].values.size());
  }
  auto map = std::find_if(rows.begin(), rows.end(), [](auto& r) { return r.name == "maps/layer0_head0"; });
  REQUIRE(map != rows.end());
  CHECK(map->shape == Shape{2, 9, 9});
  CHECK(task->train_loss(3, false).stats.empty());  // not asked for: captures nothing
}

TEST_CASE("stats.source = train is refused where a leading block is not a shorter forward", "[stats-source][config]") {
  auto error = [](std::vector<std::string> overrides) {
    overrides.push_back("stats.source=train");
    return error_of([&] { Config::from_string("", overrides); });
  };
  using Catch::Matchers::Contains;
  CHECK_THAT(error({"attention.mask=bidirectional"}), Contains("attention.mask = bidirectional breaks that"));
  CHECK_THAT(error({"attention.mask=prefix", "attention.prefix_len=65"}),
             Contains("attention.mask = prefix with prefix_len 65") && Contains("stats.source = probe"));
  CHECK(error({"attention.mask=prefix", "attention.prefix_len=64"}) == "no error");
  CHECK(error({"attention.mask=sliding", "attention.window=5"}) == "no error");
  CHECK_THAT(error({"train.batch_size=8", "train.micro_batch=4"}),
             Contains("stats.probe_batch (8) sequences of a micro-batch of 4"));
  CHECK_THAT(error({"model.type=vit"}), Contains("needs model.type = decoder"));
  CHECK(error_of([] { Config::from_string("", {"stats.source=both", "attention.mask=bidirectional"}); }) != "no error");
  CHECK(error_of([] { Config::from_string("", {"attention.mask=bidirectional"}); }) == "no error");  // probe: fine
}
