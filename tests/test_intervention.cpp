#include <catch2/catch.hpp>
#include <cmath>

#include "models/decoder.h"
#include "models/intervention.h"
#include "tests/error_of.h"

using namespace sl;
using namespace sl::models;

namespace {

float max_diff(const Tensor& a, const Tensor& b) {
  Tensor x = a.contiguous(), y = b.contiguous();
  REQUIRE(x.numel() == y.numel());
  float d = 0;
  for (int64_t i = 0; i < x.numel(); ++i) d = std::max(d, std::fabs(x.data()[i] - y.data()[i]));
  return d;
}

void set(ParamStore& ps, const std::string& name, const std::vector<std::pair<std::pair<int, int>, float>>& entries) {
  Tensor w = ps.find(name)->value;
  fill(w.data(), w.numel(), 0.f);
  for (auto [at, v] : entries) w.data()[at.first * w.size(1) + at.second] = v;
}

}  // namespace

TEST_CASE("a head with all attention on position 0 and v_0 = 0: dropping that attention changes nothing",
          "[intervention]") {
  // x_t = [1 if t = 0, a_t, b_t, 1]: q = 100 x[3] e_0 and k = x[0] e_0 give s_i0 = 50 and s_ij = 0
  // for j > 0, so softmax puts all weight on position 0; v = (x[1], x[2], 0, 0); W_O = I.
  AttentionConfig c;
  c.d_model = 4, c.n_heads = 1, c.pos = "none";
  ParamStore ps;
  Attention attn(c, ps, "attn");
  Rng rng(1);
  ps.finalize(rng);
  set(ps, "attn.wq", {{{0, 3}, 100.f}});
  set(ps, "attn.wk", {{{0, 0}, 1.f}});
  set(ps, "attn.wv", {{{0, 1}, 1.f}, {{1, 2}, 1.f}});
  set(ps, "attn.wo", {{{0, 0}, 1.f}, {{1, 1}, 1.f}, {{2, 2}, 1.f}, {{3, 3}, 1.f}});
  auto input = [](float a0) {
    return Tensor::from({1, 4, 4}, {1, a0, 0, 1, /**/ 0, 0.5f, -1, 1, /**/ 0, 2, 0.25f, 1, /**/ 0, -0.75f, 1.5f, 1});
  };
  NoGrad ng;
  using K = AttentionEdit::Kind;
  const Tensor x = input(0.f);  // v_0 = 0
  const Tensor y = attn.forward(x).y;
  CHECK(max_diff(y, Tensor::zeros({1, 4, 4})) < 1e-6f);  // the sink's value is all the head returns
  CHECK(max_diff(attn.forward(x, std::nullopt, AttentionEdit{K::DropSinkAttention}).y, y) < 1e-6f);
  // Renormalised, the weight moves to the other keys equally (their scores are equal): o_i is the
  // mean of v_1 .. v_i, and o_0 has nothing left.
  const Tensor r = attn.forward(x, std::nullopt, AttentionEdit{K::DropSinkAttentionRescaled}).y.contiguous();
  CHECK(r.data()[0 * 4 + 0] == 0.f);
  CHECK(r.data()[2 * 4 + 0] == Approx((0.5f + 2.f) / 2));
  CHECK(r.data()[3 * 4 + 1] == Approx((-1.f + 0.25f + 1.5f) / 3));
  // With v_0 != 0, dropping the sink's attention removes exactly its value from every output.
  const Tensor x2 = input(3.f);
  Tensor expected = attn.forward(x2).y.contiguous().clone();
  for (int64_t t = 0; t < 4; ++t) expected.data()[t * 4] -= 3.f;
  CHECK(max_diff(attn.forward(x2, std::nullopt, AttentionEdit{K::DropSinkAttention}).y, expected) < 1e-5f);
  // Zeroing the sink's value does the same; replacing it by the others' mean adds that mean.
  CHECK(max_diff(attn.forward(x2, std::nullopt, AttentionEdit{K::ZeroSinkValue}).y, expected) < 1e-5f);
  const Tensor m = attn.forward(x2, std::nullopt, AttentionEdit{K::MeanSinkValue}).y.contiguous();
  CHECK(m.data()[1 * 4 + 0] == Approx(expected.data()[4] + (0.5f + 2.f - 0.75f) / 3));
  CHECK(max_diff(attn.forward(x2, std::nullopt, AttentionEdit{K::ZeroHead}).y, Tensor::zeros({1, 4, 4})) == 0.f);
}

TEST_CASE("the edits on hand-made tensors", "[intervention]") {
  // A [1, 2 heads, 2 queries, 3 keys]
  const Tensor A = Tensor::from({1, 2, 2, 3}, {0.5f, 0.5f, 0, 0.2f, 0.3f, 0.5f, /**/ 0.6f, 0.4f, 0, 0.1f, 0.1f, 0.8f});
  const Tensor kept = drop_sink_attention(A, 1, false), rescaled = drop_sink_attention(A, -1, true);
  CHECK(kept.to_vector() == std::vector<float>{0.5f, 0.5f, 0, 0.2f, 0.3f, 0.5f, /**/ 0, 0.4f, 0, 0, 0.1f, 0.8f});
  const std::vector<float> want{0, 1, 0, 0, 0.375f, 0.625f, 0, 1, 0, 0, 1.f / 9, 8.f / 9};
  for (int i = 0; i < 12; ++i) CHECK(rescaled.data()[i] == Approx(want[i]));

  const Tensor v = Tensor::from({1, 1, 3, 2}, {5, 6, 1, 2, 3, -4});  // [B, H, S, d_h]
  CHECK(replace_sink_value(v, -1, false).to_vector() == std::vector<float>{0, 0, 1, 2, 3, -4});
  CHECK(replace_sink_value(v, -1, true).to_vector() == std::vector<float>{2, -1, 1, 2, 3, -4});

  const Tensor o = Tensor::from({1, 1, 2, 2}, {1, 2, 3, 4});  // [B, T, H, d_h]
  CHECK(zero_head(o, 1).to_vector() == std::vector<float>{1, 2, 0, 0});

  // h [1, 3 positions, 4 channels]: the two largest |h_0c| are channels 2 (-9) and 0 (7).
  const Tensor h = Tensor::from({1, 3, 4}, {7, 1, -9, 2, /**/ 1, 5, 3, 0, /**/ 3, 5, 5, 0});
  CHECK(ablate_massive_activations(h, {2, false}).to_vector() ==
        std::vector<float>{0, 1, 0, 2, 1, 5, 3, 0, 3, 5, 5, 0});
  CHECK(ablate_massive_activations(h, {2, true}).to_vector() == std::vector<float>{2, 1, 4, 2, 1, 5, 3, 0, 3, 5, 5, 0});
  CHECK_THAT(testing::error_of([&] {
               ablate_massive_activations(h, {5, false});
             }),
             Catch::Contains("valid: 1 to d_model = 4"));
}

TEST_CASE("an intervention is applied by the decoder at the blocks it names", "[intervention]") {
  DecoderConfig c;
  c.vocab_size = 17, c.context = 8, c.d_model = 8, c.n_layers = 2, c.n_heads = 2, c.d_ff = 12, c.init_std = 0.3f;
  ParamStore ps;
  Decoder m(c, ps);
  Rng rng(2);
  ps.finalize(rng);
  NoGrad ng;
  const std::vector<int32_t> ids{3, 1, 4, 1, 5, 9, 2, 6};
  const Tensor base = m.forward(ids, 1, 8).logits;
  // Every head of block 1 zeroed is block 1 without its output projection.
  const Tensor ablated =
      m.forward(ids, 1, 8, std::nullopt, Intervention{1, AttentionEdit{AttentionEdit::Kind::ZeroHead}, {}}).logits;
  Tensor wo = ps.find("blocks.1.attn.wo")->value;
  const Tensor saved = wo.clone();
  fill(wo.data(), wo.numel(), 0.f);
  CHECK(max_diff(ablated, m.forward(ids, 1, 8).logits) < 1e-6f);
  std::copy_n(saved.data(), saved.numel(), wo.data());
  CHECK(max_diff(ablated, base) > 1e-3f);
  // An edit of block 0 only leaves a forward that differs from editing every block.
  const Intervention first{0, AttentionEdit{AttentionEdit::Kind::ZeroSinkValue}, {}};
  const Intervention every{-1, AttentionEdit{AttentionEdit::Kind::ZeroSinkValue}, {}};
  CHECK(max_diff(m.forward(ids, 1, 8, std::nullopt, first).logits, m.forward(ids, 1, 8, std::nullopt, every).logits) >
        1e-4f);
}
