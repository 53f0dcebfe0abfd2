#include <catch2/catch.hpp>
#include <cmath>

#include "models/attention.h"
#include "tests/gradcheck.h"
#include "tests/random_params.h"

using namespace sl;
using namespace sl::models;
using sl::testing::randomise;

namespace {

AttentionConfig small(const std::string& kernel) {
  AttentionConfig c;
  c.d_model = 12;  // head dim 6: RoPE rotates pairs
  c.n_heads = 2;
  c.kernel = kernel;
  c.init_std = 0.5f;
  c.out_init_std = 0.5f;
  return c;
}

}  // namespace

TEST_CASE("causal, prefix and sliding masks entry by entry", "[attention][mask]") {
  AttentionConfig c;
  const int64_t T = 5;
  auto blocked = [&](int64_t slots) { return Attention::make_mask(c, T, slots); };
  c.mask = "causal";
  auto m = blocked(0);
  for (int64_t i = 0; i < T; ++i)
    for (int64_t j = 0; j < T; ++j) REQUIRE(m[i * T + j] == (j > i));

  c.mask = "prefix";
  c.prefix_len = 3;  // queries 0..2 see keys 0..2 both ways; later queries are causal
  m = blocked(0);
  for (int64_t i = 0; i < T; ++i)
    for (int64_t j = 0; j < T; ++j) REQUIRE(m[i * T + j] == (j > i && !(i < 3 && j < 3)));

  c.mask = "sliding";
  c.window = 2;  // key j visible to query i iff i-2 < j <= i
  m = blocked(0);
  for (int64_t i = 0; i < T; ++i)
    for (int64_t j = 0; j < T; ++j) REQUIRE(m[i * T + j] == (j > i || i - j >= 2));

  c.mask = "bidirectional";
  m = blocked(0);
  for (auto v : m) REQUIRE(v == 0);

  c.mask = "causal";  // a bias slot (column 0) is visible to every query
  m = blocked(1);
  for (int64_t i = 0; i < T; ++i) {
    REQUIRE(m[i * (T + 1)] == 0);
    for (int64_t j = 0; j < T; ++j) REQUIRE(m[i * (T + 1) + 1 + j] == (j > i));
  }
}

TEST_CASE("the capture says whether the weights are distributions over keys", "[attention][stats]") {
  struct Case { std::string kernel; bool normalize, fused, distribution; };
  for (const Case& k : {Case{"softmax", false, true, true}, Case{"softmax", false, false, true},
                        Case{"sigmoid", false, true, false}, Case{"sigmoid", true, true, true},
                        Case{"relu", true, false, true}, Case{"elu_plus_one", false, false, false},
                        Case{"elu_plus_one", true, false, true}, Case{"linear", true, false, false},
                        Case{"mlp", true, false, false}, Case{"mlp", false, false, false},
                        Case{"softpick", false, false, false}, Case{"softpick", true, false, true}}) {
    INFO(k.kernel << " normalize " << k.normalize << " fused " << k.fused);
    AttentionConfig c = small(k.kernel);
    c.normalize = k.normalize, c.fused_core = k.fused;
    ParamStore ps;
    Attention attn(c, ps, "attn");
    randomise(ps, 3);
    CHECK(attn.forward(testing::randn({1, 4, 12}, 2), CaptureRequest{}).capture->normalized == k.distribution);
  }
}

TEST_CASE("every attention variant has correct gradients", "[attention][grad]") {
  std::vector<std::function<void(AttentionConfig&)>> variants;
  // Every declared kernel, plain and row-normalised (ReLU and linear rows can sum to about zero,
  // where a finite difference means nothing: plain only). Softpick's kink at s = 0 sits among
  // these small scores: test_attention_kernels.cpp checks it on scores away from it.
  for (const AttentionKernel& k : attention_kernels())
    for (bool normalize : {false, true})
      if (k.id != AttnKernel::Softpick &&
          (!normalize || (k.id != AttnKernel::Relu && k.id != AttnKernel::Linear && !k.distribution)))
        variants.push_back([name = std::string(k.name), normalize](AttentionConfig& c) {
          c.kernel = name;
          c.normalize = normalize;
          c.mlp_hidden = 5;
        });
  std::vector<std::function<void(AttentionConfig&)>> additions = {
      [](AttentionConfig& c) { c.kernel = "sigmoid"; c.sigmoid_bias = NAN; },
      [](AttentionConfig& c) { c.off_by_one = true; },
      [](AttentionConfig& c) { c.sink_logit = true; },
      [](AttentionConfig& c) { c.kv_bias = true; },
      [](AttentionConfig& c) { c.kv_bias = true; c.kv_bias_per_head = true; c.kv_bias_value_learnable = false; },
      [](AttentionConfig& c) { c.value_bias = true; c.kv_bias_per_head = true; },
      [](AttentionConfig& c) { c.gate = "elementwise"; },
      [](AttentionConfig& c) { c.gate = "headwise"; },
      [](AttentionConfig& c) { c.qk_norm = true; },
      [](AttentionConfig& c) { c.pos = "alibi"; },
      [](AttentionConfig& c) { c.pos = "relative"; c.relative_buckets = 8; c.relative_max_distance = 16; },
      [](AttentionConfig& c) { c.mask = "prefix"; c.prefix_len = 3; },
      [](AttentionConfig& c) { c.mask = "sliding"; c.window = 2; },
      [](AttentionConfig& c) { c.mask = "bidirectional"; c.bias = true; },
  };
  variants.insert(variants.end(), additions.begin(), additions.end());
  for (size_t v = 0; v < variants.size(); ++v) {
    AttentionConfig c = small("softmax");
    variants[v](c);
    ParamStore ps;
    Attention attn(c, ps, "attn");
    randomise(ps, 100 + v);
    std::vector<Tensor> inputs{testing::randn({2, 5, 12}, 7 + v)};
    for (auto& p : ps.params()) inputs.push_back(p.value);
    auto f = [&](const std::vector<Tensor>& in) { return attn.forward(in[0]).y; };
    INFO("variant " << v << " kernel " << c.kernel);
    REQUIRE(testing::gradcheck(f, inputs, 3e-3) < 1e-3);
  }
}

TEST_CASE("normalised kernels sum to one per row, unnormalised ones do not", "[attention]") {
  for (std::string kernel : {"softmax", "sigmoid", "relu", "elu_plus_one"}) {
    for (bool normalize : {false, true}) {
      AttentionConfig c = small(kernel);
      c.normalize = normalize;
      ParamStore ps;
      Attention attn(c, ps, "attn");
      randomise(ps, 3);
      AttentionCapture cap = *attn.forward(testing::randn({2, 6, 12}, 5), CaptureRequest{}).capture;
      Tensor A = cap.probs;
      bool normalised = kernel == "softmax" || normalize;
      double worst = 0;
      for (int64_t r = 0; r < A.numel() / A.size(-1); ++r) {
        double s = 0;
        for (int64_t j = 0; j < A.size(-1); ++j) s += A.data()[r * A.size(-1) + j];
        worst = std::max(worst, std::abs(s - 1));
      }
      INFO(kernel << " normalize=" << normalize);
      if (normalised) REQUIRE(worst < 1e-5);
      else REQUIRE(worst > 1e-2);
    }
  }
}

TEST_CASE("off-by-one and sink logit leave probability mass unassigned", "[attention]") {
  AttentionConfig c = small("softmax");
  c.off_by_one = true;
  ParamStore ps;
  Attention attn(c, ps, "attn");
  randomise(ps, 9);
  AttentionCapture cap = *attn.forward(testing::randn({1, 4, 12}, 2), CaptureRequest{}).capture;
  // Row 0 sees one key: A_00 = e^s / (1 + e^s) < 1.
  const float a00 = cap.probs.data()[0];
  REQUIRE(a00 > 0.f);
  REQUIRE(a00 < 1.f);
}

TEST_CASE("the capture's queries, mask, W_O^h and output reproduce its weights and output", "[attention][stats]") {
  // softmax_j(q_t . k_j / sqrt(d_h)) over the keys the mask shows is the captured A_tj, and
  // sum_h sum_j A_tj v_j W_O^h the captured output, on the request's block (1 of 2 sequences,
  // 3 of 5 positions), fused or composed, with a kv-bias slot or without.
  for (bool fused : {true, false})
    for (bool kv_bias : {false, true}) {
      INFO("fused " << fused << " kv_bias " << kv_bias);
      AttentionConfig c = small("softmax");
      c.fused_core = fused, c.kv_bias = kv_bias, c.qk_norm = true;
      ParamStore ps;
      Attention attn(c, ps, "attn");
      randomise(ps, 4);
      const AttentionCapture cap = *attn.forward(testing::randn({2, 5, 12}, 6), CaptureRequest{1, 3}).capture;
      const int64_t H = 2, T = 3, dh = 6, D = 12, slots = kv_bias ? 1 : 0, S = slots + T;
      REQUIRE(cap.queries.shape() == Shape{1, H, T, dh});
      REQUIRE(cap.out_proj.shape() == Shape{H, dh, D});
      REQUIRE(cap.output.shape() == Shape{1, T, D});
      REQUIRE(cap.mask == Attention::make_mask(c, T, slots));
      const std::vector<float> q = cap.queries.to_vector(), k = cap.keys.to_vector(), v = cap.values.to_vector(),
                               A = cap.probs.to_vector(), W = cap.out_proj.to_vector(), y = cap.output.to_vector();
      double worst_weight = 0, worst_output = 0;
      for (int64_t t = 0; t < T; ++t) {
        std::vector<double> out(D, 0);
        for (int64_t h = 0; h < H; ++h) {
          std::vector<double> e(S, 0);
          double total = 0;
          for (int64_t j = 0; j < S; ++j) {
            if (cap.mask[t * S + j]) continue;
            double s = 0;
            for (int64_t d = 0; d < dh; ++d) s += q[(h * T + t) * dh + d] * k[(h * S + j) * dh + d];
            total += e[j] = std::exp(s / std::sqrt((double)dh));
          }
          for (int64_t j = 0; j < S; ++j) {
            const double a = A[(h * T + t) * S + j];
            worst_weight = std::max(worst_weight, std::abs(a - e[j] / total));
            for (int64_t d = 0; d < dh; ++d)
              for (int64_t o = 0; o < D; ++o) out[o] += a * v[(h * S + j) * dh + d] * W[(h * dh + d) * D + o];
          }
        }
        for (int64_t o = 0; o < D; ++o) worst_output = std::max(worst_output, std::abs(out[o] - y[t * D + o]));
      }
      CHECK(worst_weight < 1e-5);
      CHECK(worst_output < 1e-5);
    }
}
