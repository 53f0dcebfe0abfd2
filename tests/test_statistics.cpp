// The declared statistics (models/statistics.h) on hand-made captures with known answers, the
// paper's proxy weights and Sink_*, and the declaration's summary columns.
#include <catch2/catch.hpp>
#include <cmath>
#include <functional>
#include <numeric>
#include <set>

#include "models/decoder.h"
#include "models/hidden_stats.h"
#include "models/sink_stats.h"
#include "models/statistics.h"

using namespace sl;
using namespace sl::models;

namespace {

// One layer's capture of hand-made weights [B, H, T, S].
AttentionCapture capture(const Shape& shape, const std::vector<float>& probs, int64_t slots = 0,
                         bool normalized = true) {
  AttentionCapture c;
  c.probs = Tensor::from(shape, probs);
  c.slot_offset = slots;
  c.normalized = normalized;
  return c;
}

// Causal attention over T keys: every query spreads 1 / (i + 1) over keys 0..i.
Tensor uniform_causal(int64_t T) {
  Tensor u = Tensor::zeros({1, 1, T, T});
  for (int64_t i = 0; i < T; ++i)
    for (int64_t j = 0; j <= i; ++j) u.data()[i * T + j] = 1.f / (i + 1);
  return u;
}

// A perfect sink: every query puts all its weight on key 0.
Tensor perfect_sink(int64_t T) {
  Tensor s = Tensor::zeros({1, 1, T, T});
  for (int64_t i = 0; i < T; ++i) s.data()[i * T] = 1.f;
  return s;
}

StatsOptions options(int64_t first_k, std::vector<double> eps) {
  StatsOptions o;
  o.first_k = first_k;
  o.eps = std::move(eps);
  return o;
}

// The decoder's default mask over T queries and S = slots + T keys (1 = hidden).
std::vector<uint8_t> causal_mask(int64_t T, int64_t slots = 0) {
  return Attention::make_mask(AttentionConfig{}, T, slots);
}

const std::vector<Tensor> kNoHidden;
const std::vector<MoECapture> kNoMoE;

void check_values(const std::vector<float>& got, const std::vector<double>& want) {
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    INFO("entry " << i);
    CHECK(got[i] == Approx(want[i]).margin(1e-6));
  }
}

}  // namespace

TEST_CASE("importance of hand-made attention maps", "[stats]") {
  const int64_t T = 4;
  auto a = importance(uniform_causal(T), 0, T);
  REQUIRE(a[0] == Approx((1 + 0.5 + 1.0 / 3 + 0.25) / 4));  // alpha_0 = mean of row i's 1/(i+1)
  REQUIRE(a[3] == Approx(0.25));                           // only the last query sees key 3
  REQUIRE(importance(perfect_sink(T), 0, 2)[0] == Approx(1.0));
  REQUIRE(importance(perfect_sink(T), 0, 2)[1] == Approx(0.0));

  // Bidirectional (ViT), one bias slot: rows [slot, k0, k1, k2].
  Tensor A = Tensor::from({1, 1, 3, 4}, {0.1f, 0.5f, 0.2f, 0.2f, 0.f, 0.9f, 0.1f, 0.f, 0.3f, 0.3f, 0.f, 0.4f});
  check_values(importance_all_queries(A, 1), {(0.5 + 0.9 + 0.3) / 3, (0.2 + 0.1 + 0.0) / 3, (0.2 + 0.0 + 0.4) / 3});
}

TEST_CASE("sink rates, importance and the row statistics of a sink and a uniform layer", "[stats]") {
  // Layer 0 sinks (alpha_0 = 1), layer 1 is uniform (alpha_0 = 0.52, alpha_1 = 0.36): both
  // exceed eps 0.3 at position 0, only the sink exceeds 0.6; at position 1 only the uniform 0.3.
  const int64_t T = 4;
  std::vector<AttentionCapture> caps(2);
  caps[0].probs = perfect_sink(T);
  caps[1].probs = uniform_causal(T);
  StatsInput in(caps, kNoHidden, kNoMoE, options(2, {0.3, 0.6}));
  const double u0 = (1 + 0.5 + 1.0 / 3 + 0.25) / 4, u1 = (0.5 + 1.0 / 3 + 0.25) / 3;
  check_values(compute("attn/sink_rate", in), {100, 50});
  check_values(compute("attn/sink_rate_k", in), {100, 50, 50, 0});  // [eps, K]
  check_values(compute("attn/alpha", in), {1, 0, u0, u1});        // [L, H, K]
  check_values(compute("attn/entropy", in), {0, (std::log(2.) + std::log(3.) + std::log(4.)) / 4});
  check_values(compute("attn/max", in), {1, 1});
  check_values(compute("attn/mean", in), {0.25, 0.25});  // 4 rows of sum 1 over 16 cells
  check_values(compute("attn/row_sum", in), {1, 1});
  // No keys, values or hidden states were captured: their norms are zero and hidden/ is not logged.
  check_values(compute("attn/key_norm", in), {0, 0, 0, 0});
  CHECK_THROWS_WITH(compute("hidden/norm", in), Catch::Contains("not logged for this capture"));
  CHECK_THROWS_WITH(compute("attn/proxy_alpha", in), Catch::Contains("not logged"));
  CHECK_THROWS_WITH(compute("attn/nonsense", in), Catch::Contains("sinklab stats --list"));

  // Sink rates average over sequences and heads: two sequences, one sinks.
  std::vector<float> two(2 * T * T, 0.f);
  std::copy_n(perfect_sink(T).data(), T * T, two.begin());
  std::copy_n(uniform_causal(T).data(), T * T, two.begin() + T * T);
  std::vector<AttentionCapture> batch{capture({2, 1, T, T}, two)};
  StatsInput bin(batch, kNoHidden, kNoMoE, options(1, {0.6}));
  check_values(compute("attn/sink_rate", bin), {50});
  check_values(compute("attn/alpha", bin), {(1 + u0) / 2});
}

TEST_CASE("a kv-bias slot: slot_alpha, Sink_* and the importance of the keys after it", "[stats]") {
  // B = H = 1, T = 2, one slot: rows [slot, k0, k1].
  std::vector<AttentionCapture> caps{capture({1, 1, 2, 3}, {0.5f, 0.5f, 0.f, 0.2f, 0.4f, 0.4f}, 1)};
  caps[0].keys = Tensor::from({1, 1, 3, 2}, {9, 9, 3, 4, 0, 1});  // the slot's key is not a position
  caps[0].values = Tensor::from({1, 1, 3, 2}, {9, 9, 0, 2, 1, 0});
  StatsInput in(caps, kNoHidden, kNoMoE, options(2, {0.3, 0.4}));
  check_values(compute("attn/slot_alpha", in), {(0.5 + 0.2) / 2});
  check_values(compute("attn/slot_sink_rate", in), {100, 0});  // 0.35 > 0.3, not > 0.4
  check_values(compute("attn/alpha", in), {(0.5 + 0.4) / 2, 0.4});
  check_values(compute("attn/key_norm", in), {5, 1});
  check_values(compute("attn/value_norm", in), {2, 1});
}

TEST_CASE("a sink token: Sink_* counts the (layer, head, sequence) whose sink token exceeds eps", "[stats]") {
  // H = 2, T = 3: head 0 gives 0.9 of every query to the sink token (position 0), head 1 is uniform.
  std::vector<float> w(2 * 9, 0.f);
  const float head0[] = {1, 0, 0, 0.9f, 0.1f, 0, 0.9f, 0.05f, 0.05f};
  std::copy(head0, head0 + 9, w.begin());
  std::copy_n(uniform_causal(3).data(), 9, w.begin() + 9);
  StatsOptions o = options(2, {0.7, 0.95});
  o.sink_tokens = 1;
  std::vector<AttentionCapture> caps{capture({1, 2, 3, 3}, w)};
  StatsInput in(caps, kNoHidden, kNoMoE, o);
  // head 0: (1 + 0.9 + 0.9) / 3 = 0.933; head 1: (1 + 1/2 + 1/3) / 3 = 0.611
  check_values(compute("attn/slot_sink_rate", in), {50, 0});
  // With a kv-bias slot as well, the slot is both columns: rows [slot, sink token, k1].
  std::vector<float> ws = {0.1f, 0.9f, 0.f, 0.1f, 0.45f, 0.45f};
  std::vector<AttentionCapture> both{capture({1, 1, 2, 3}, ws, 1)};
  StatsInput bin(both, kNoHidden, kNoMoE, o);
  check_values(compute("attn/slot_sink_rate", bin), {100, 0});  // (1.0 + 0.55) / 2 = 0.775
  check_values(compute("attn/slot_alpha", bin), {0.1});        // the kv-bias column alone
  // Without a sink token or slot there is no Sink_*.
  std::vector<AttentionCapture> plain{capture({1, 1, 3, 3}, std::vector<float>(head0, head0 + 9))};
  CHECK_THROWS(compute("attn/slot_sink_rate", StatsInput(plain, kNoHidden, kNoMoE, options(2, {0.5}))));
}

TEST_CASE("proxy weights |w| / sum |w| per row", "[stats]") {
  Tensor P = proxy_weights(Tensor::from({3, 3}, {2, 1, 1, -2, 1, -1, 0, 0, 0}));
  check_values(P.to_vector(), {0.5, 0.25, 0.25, 0.5, 0.25, 0.25, 0, 0, 0});
}

TEST_CASE("unnormalised weights: the proxy statistics beside the raw ones", "[stats]") {
  // Rows [2, 0] and [-1, 3]: proxy rows [1, 0] and [0.25, 0.75].
  std::vector<AttentionCapture> caps{capture({1, 1, 2, 2}, {2, 0, -1, 3}, 0, false)};
  StatsInput in(caps, kNoHidden, kNoMoE, options(2, {0.6}));
  check_values(compute("attn/alpha", in), {(2 - 1) / 2.0, 3});
  check_values(compute("attn/proxy_alpha", in), {(1 + 0.25) / 2, 0.75});
  check_values(compute("attn/sink_rate", in), {0});        // raw alpha_0 = 0.5
  check_values(compute("attn/proxy_sink_rate", in), {100});  // proxy alpha_0 = 0.625
  check_values(compute("attn/proxy_sink_rate_k", in), {100, 100});
  CHECK_THROWS(compute("attn/proxy_slot_sink_rate", in));  // no slot
  // The report reads the proxy where it is logged.
  auto logged = [&](const std::string& n) { return n != "attn/proxy_alpha"; };
  CHECK(reported(*find_statistic("attn/sink_rate"), logged).name == "attn/proxy_sink_rate");
  CHECK(reported(*find_statistic("attn/alpha"), logged).name == "attn/alpha");

  // With a kv-bias slot, Sink_* on the proxy too: rows [slot, k0, k1] = [-3, 1, 0] and [1, 1, 2].
  std::vector<AttentionCapture> slot{capture({1, 1, 2, 3}, {-3, 1, 0, 1, 1, 2}, 1, false)};
  StatsInput sin(slot, kNoHidden, kNoMoE, options(1, {0.4}));
  check_values(compute("attn/slot_sink_rate", sin), {0});          // raw (-3 + 1) / 2 = -1
  check_values(compute("attn/proxy_slot_sink_rate", sin), {100});  // proxy (0.75 + 0.25) / 2 = 0.5

  // Entropies read the proxy: an MLP kernel's head whose rows all sum to 0 or less (here [-1, 1]
  // and [-2, 1] under the causal mask) has no raw entropy, but its proxy rows [1, 0] and
  // [2/3, 1/3] do: H = 0 and ln 3 - 2/3 ln 2, over ln 2 for the row that sees two keys.
  std::vector<AttentionCapture> mlp{capture({1, 1, 2, 2}, {-1, 0, -2, 1}, 0, false)};
  mlp[0].mask = causal_mask(2);
  StatsInput min(mlp, kNoHidden, kNoMoE, options(1, {0.3}));
  const double h1 = std::log(3.0) - 2.0 / 3 * std::log(2.0);
  check_values(compute("attn/entropy", min), {h1 / 2});
  check_values(compute("attn/normalized_entropy", min), {h1 / std::log(2.0)});
}

TEST_CASE("hidden-state norms and massive activations", "[stats]") {
  std::vector<AttentionCapture> caps{capture({1, 1, 3, 3}, uniform_causal(3).to_vector())};
  std::vector<Tensor> hidden{Tensor::from({1, 3, 2}, {6, 8, 1, 0, 0, 2})};  // norms 10, 1, 2
  StatsInput in(caps, hidden, kNoMoE, options(2, {0.3}));
  check_values(compute("hidden/norm", in), {10, 1});
  check_values(compute("hidden/massive_ratio", in), {5});  // 10 / median(10, 1, 2)
}

TEST_CASE("diagonal mass: 1 on a diagonal attention, the harmonic mean of a uniform causal one", "[stats]") {
  const int64_t T = 4;
  std::vector<float> diagonal(T * T, 0.f);
  for (int64_t i = 0; i < T; ++i) diagonal[i * T + i] = 1;
  std::vector<AttentionCapture> caps{capture({1, 1, T, T}, diagonal),
                                     capture({1, 1, T, T}, uniform_causal(T).to_vector()),
                                     capture({1, 1, T, T}, perfect_sink(T).to_vector())};
  StatsInput in(caps, kNoHidden, kNoMoE, options(2, {0.3}));
  check_values(compute("attn/diag_mass", in), {1, (1 + 0.5 + 1.0 / 3 + 0.25) / 4, 0.25});  // the sink's A_00 only
  CHECK_THROWS_WITH(compute("attn/proxy_diag_mass", in), Catch::Contains("not logged"));

  // One kv-bias slot: rows [slot, k0, k1]; the diagonal is A[t, 1 + t].
  std::vector<AttentionCapture> slot{capture({1, 1, 2, 3}, {0.5f, 0.5f, 0.f, 0.2f, 0.4f, 0.4f}, 1)};
  check_values(compute("attn/diag_mass", StatsInput(slot, kNoHidden, kNoMoE, options(1, {0.3}))), {(0.5 + 0.4) / 2});

  // Unnormalised rows [2, 0] and [-1, 3]: raw (2 + 3) / 2, proxy rows [1, 0] and [0.25, 0.75].
  std::vector<AttentionCapture> raw{capture({1, 1, 2, 2}, {2, 0, -1, 3}, 0, false)};
  StatsInput rin(raw, kNoHidden, kNoMoE, options(1, {0.3}));
  check_values(compute("attn/diag_mass", rin), {2.5});
  check_values(compute("attn/proxy_diag_mass", rin), {(1 + 0.75) / 2});
  CHECK(reported(*find_statistic("attn/diag_mass"), [](const std::string&) { return true; }).name ==
        "attn/proxy_diag_mass");
}

TEST_CASE("row entropy over log of the visible keys", "[stats]") {
  // Rows [1], [1/2, 1/2], [0, 1/2, 1/2]: row 0 sees one key and is skipped.
  const std::vector<float> w = {1, 0, 0, 0.5f, 0.5f, 0, 0, 0.5f, 0.5f};
  std::vector<AttentionCapture> caps{capture({1, 1, 3, 3}, w), capture({1, 1, 4, 4}, uniform_causal(4).to_vector()),
                                     capture({1, 1, 4, 4}, perfect_sink(4).to_vector())};
  caps[0].mask = causal_mask(3);
  caps[1].mask = caps[2].mask = causal_mask(4);
  StatsInput in(caps, kNoHidden, kNoMoE, options(1, {0.3}));
  // Uniform rows have normalised entropy 1, a row on one key 0, row 2 of layer 0 log 2 / log 3.
  check_values(compute("attn/normalized_entropy", in), {(1 + std::log(2.) / std::log(3.)) / 2, 1, 0});

  // Under a sliding window of 2, row 2 sees keys 1 and 2 only: uniform over them.
  AttentionConfig sliding;
  sliding.mask = "sliding", sliding.window = 2;
  caps[0].mask = Attention::make_mask(sliding, 3, 0);
  check_values(compute("attn/normalized_entropy", StatsInput(caps, kNoHidden, kNoMoE, options(1, {0.3}))), {1, 1, 0});

  // A kv-bias slot is a visible key: rows [slot, k0] = [1/2, 1/2] and [slot, k0, k1] = [1/3, 1/3, 1/3].
  std::vector<AttentionCapture> slot{capture({1, 1, 2, 3}, {0.5f, 0.5f, 0, 1 / 3.f, 1 / 3.f, 1 / 3.f}, 1)};
  slot[0].mask = causal_mask(2, 1);
  check_values(compute("attn/normalized_entropy", StatsInput(slot, kNoHidden, kNoMoE, options(1, {0.3}))), {1});

  // No mask captured: not logged.
  caps[0].mask.clear();
  CHECK_THROWS_WITH(compute("attn/normalized_entropy", StatsInput(caps, kNoHidden, kNoMoE, options(1, {0.3}))),
                    Catch::Contains("not logged"));
}

TEST_CASE("the sink's contribution to the output, norm-based (Kobayashi et al.)", "[stats]") {
  // d_h = D = 2, W_O^h = diag(2, 1): v_0 = (1, 0) writes (2, 0), norm 2; v_1 = (0, 3) writes (0, 3), norm 3.
  auto head = [](const std::vector<float>& probs) {
    AttentionCapture c = capture({1, 1, 2, 2}, probs);
    c.values = Tensor::from({1, 1, 2, 2}, {1, 0, 0, 3});
    c.out_proj = Tensor::from({1, 2, 2}, {2, 0, 0, 1});
    return c;
  };
  // All attention on position 0: the sink writes everything.
  std::vector<AttentionCapture> sink{head({1, 0, 1, 0})};
  StatsInput sin(sink, kNoHidden, kNoMoE, options(1, {0.3}));
  check_values(compute("attn/sink_contribution_share", sin), {1});
  check_values(compute("attn/sink_contribution", sin), {2});
  check_values(compute("attn/total_contribution", sin), {2});
  // Rows [1, 0] and [1/2, 1/2]: row 1 writes 0.5 * 2 from the sink of 0.5 * 2 + 0.5 * 3.
  std::vector<AttentionCapture> mixed{head({1, 0, 0.5f, 0.5f})};
  StatsInput min(mixed, kNoHidden, kNoMoE, options(1, {0.3}));
  check_values(compute("attn/sink_contribution", min), {(2 + 1) / 2.0});
  check_values(compute("attn/total_contribution", min), {(2 + 2.5) / 2.0});
  check_values(compute("attn/sink_contribution_share", min), {(1 + 1 / 2.5) / 2});
  // A sink whose value is zero writes nothing, however much attention it takes.
  sink[0].values = Tensor::from({1, 1, 2, 2}, {0, 0, 0, 3});
  check_values(compute("attn/sink_contribution_share", StatsInput(sink, kNoHidden, kNoMoE, options(1, {0.3}))), {0});

  // Two heads, one slot: W_O^h differs per head; the sink is the column after the slot.
  AttentionCapture two = capture({1, 2, 1, 2}, {0.25f, 0.75f, 1, 0}, 1);
  two.values = Tensor::from({1, 2, 2, 1}, {4, 1, 4, 1});  // head h: slot value 4, position 0 value 1
  two.out_proj = Tensor::from({2, 1, 2}, {3, 4, 0, 1});   // ||W_O^0|| = 5, ||W_O^1|| = 1
  std::vector<AttentionCapture> slotted{two};
  StatsInput tin(slotted, kNoHidden, kNoMoE, options(1, {0.3}));
  check_values(compute("attn/sink_contribution", tin), {0.75 * 5, 0});
  check_values(compute("attn/total_contribution", tin), {0.25 * 4 * 5 + 0.75 * 5, 4});
  check_values(compute("attn/sink_contribution_share", tin), {3.75 / 8.75, 0});
  std::vector<AttentionCapture> no_values{capture({1, 1, 1, 1}, {1})};
  CHECK_THROWS_WITH(compute("attn/sink_contribution", StatsInput(no_values, kNoHidden, kNoMoE, options(1, {0.3}))),
                    Catch::Contains("not logged"));
}

TEST_CASE("the centred sink logit: the scaled score of position 0 above the row's mean", "[stats]") {
  // d_h = 4 (scale 1/2), scores q_t . k_j = b_t a_j with keys a = (2, 0, 1), queries b = (1, 1, 2).
  AttentionCapture c = capture({1, 1, 3, 3}, uniform_causal(3).to_vector());
  c.keys = Tensor::from({1, 1, 3, 4}, {2, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0});
  c.queries = Tensor::from({1, 1, 3, 4}, {1, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0});
  c.mask = causal_mask(3);
  // Query 1: scores (2, 0) / 2, 1 - 0.5; query 2: (4, 0, 2) / 2, 2 - 1. Query 0 is left out.
  std::vector<AttentionCapture> caps{c};
  check_values(compute("attn/centred_sink_logit", StatsInput(caps, kNoHidden, kNoMoE, options(1, {0.3}))),
               {(0.5 + 1) / 2});
  // A sliding window of 2 hides position 0 from query 2: only query 1 counts.
  AttentionConfig sliding;
  sliding.mask = "sliding", sliding.window = 2;
  caps[0].mask = Attention::make_mask(sliding, 3, 0);
  check_values(compute("attn/centred_sink_logit", StatsInput(caps, kNoHidden, kNoMoE, options(1, {0.3}))), {0.5});
  // Without the queries it is not logged.
  caps[0].queries = Tensor();
  CHECK_THROWS_WITH(compute("attn/centred_sink_logit", StatsInput(caps, kNoHidden, kNoMoE, options(1, {0.3}))),
                    Catch::Contains("not logged"));
}

TEST_CASE("over-smoothing: pairwise cosine and the rank-collapse residual", "[stats]") {
  std::vector<AttentionCapture> caps{capture({2, 1, 3, 3}, std::vector<float>(18, 0.f))};
  // Sequence 0: three identical tokens; sequence 1: e_1, e_2 and -e_1.
  std::vector<Tensor> hidden{Tensor::from({2, 3, 2}, {3, 4, 3, 4, 3, 4, 1, 0, 0, 1, -1, 0})};
  StatsInput in(caps, hidden, kNoMoE, options(1, {0.3}));
  // Sequence 1's pairs: cos(e1, e2) = 0, cos(e1, -e1) = -1, cos(e2, -e1) = 0.
  check_values(compute("hidden/cosine", in), {(1 + -1 / 3.0) / 2});
  // Sequence 1: mean (0, 1/3), ||X - 1 xbar^T||^2 = 3 - 3 * (1/9), ||X||^2 = 3.
  check_values(compute("hidden/rank_residual", in), {(0 + std::sqrt((3 - 1 / 3.0) / 3)) / 2});
  // Identical rows alone: cosine 1, residual 0.
  std::vector<Tensor> same{Tensor::from({1, 3, 2}, {3, 4, 3, 4, 3, 4})};
  std::vector<AttentionCapture> one{capture({1, 1, 3, 3}, uniform_causal(3).to_vector())};
  StatsInput sin(one, same, kNoMoE, options(1, {0.3}));
  check_values(compute("hidden/cosine", sin), {1});
  check_values(compute("hidden/rank_residual", sin), {0});
}

TEST_CASE("massive activations and quantisation outliers of the residual stream and the attention output",
          "[stats]") {
  std::vector<AttentionCapture> caps{capture({1, 1, 3, 3}, uniform_causal(3).to_vector())};
  // |h| = 7, 1, 2 | 0.5, 3, 4 | 0, 9, 1: top three 9, 7, 4; median of the nine 2.
  std::vector<Tensor> hidden{Tensor::from({1, 3, 3}, {-7, 1, 2, 0.5f, -3, 4, 0, 9, -1})};
  StatsInput in(caps, hidden, kNoMoE, options(1, {0.3}));
  check_values(compute("hidden/top_magnitudes", in), {9, 7, 4});
  check_values(compute("hidden/median_magnitude", in), {2});
  check_values(compute("hidden/massive_activation_ratio", in), {4.5});
  check_values(compute("hidden/inf_norm", in), {9});
  // An even count of magnitudes 1.000 ... 1.099 of both signs, shuffled, few enough to be selected
  // among at once: the upper median is the 51st.
  std::vector<float> close(100);
  for (int i = 0; i < 100; ++i) close[i] = (i % 2 ? -1.f : 1.f) * (1 + (float)(i * 37 % 100) / 1000.f);
  const Magnitudes m = magnitudes(Tensor::from({1, 100, 1}, close));
  CHECK(m.median == 1 + 50 / 1000.f);
  CHECK(m.top == std::array<float, 3>{1 + 99 / 1000.f, 1 + 98 / 1000.f, 1 + 97 / 1000.f});
  // Spread over many octaves, so that the median's range is bisected many times before the few
  // left are selected among; then with a third of the values one magnitude, where bisection ends
  // at a range of one bit pattern: the exact upper median and top three of a sort.
  Rng rng(5);
  std::vector<float> spread(3001);
  for (float& x : spread) x = rng.normal() * std::exp(2 * rng.normal());
  for (int ties : {0, 1000}) {
    INFO(ties << " ties");
    for (int i = 0; i < ties; ++i) spread[i * 3] = i % 2 ? -0.75f : 0.75f;
    std::vector<float> sorted(spread.size());
    std::transform(spread.begin(), spread.end(), sorted.begin(), [](float x) { return std::fabs(x); });
    std::sort(sorted.rbegin(), sorted.rend());
    const Magnitudes s = magnitudes(Tensor::from({1, 3001, 1}, spread));
    CHECK(s.median == sorted[1500]);
    CHECK(s.top == std::array<float, 3>{sorted[0], sorted[1], sorted[2]});
  }
  // Half the values 1 and half 2: exactly the lower half lies below every threshold between them,
  // and the upper median is 2.
  std::vector<float> halves(1000);
  for (int i = 0; i < 1000; ++i) halves[i] = i % 2 ? 1.f : -2.f;
  CHECK(magnitudes(Tensor::from({1, 1000, 1}, halves)).median == 2.f);

  // Kurtosis m4 / m2^2 of a token's channels: (1, -1, 1, -1) has 1; (0, 0, 0, 4) has deviations
  // (-1, -1, -1, 3), m2 = 3, m4 = 21: 7/3; a constant token has none and is skipped.
  std::vector<Tensor> tokens{Tensor::from({2, 2, 4}, {1, -1, 1, -1, 0, 0, 0, 4, 5, 5, 5, 5, 0, 0, 0, 4})};
  std::vector<AttentionCapture> two{capture({2, 1, 2, 2}, std::vector<float>(8, 0.f))};
  two[0].output = tokens[0];
  StatsInput kin(two, tokens, kNoMoE, options(1, {0.3}));
  const double kurtosis = ((1 + 7 / 3.0) / 2 + 7 / 3.0) / 2;  // per sequence, then over sequences
  check_values(compute("hidden/kurtosis", kin), {kurtosis});
  check_values(compute("attn/output_kurtosis", kin), {kurtosis});
  check_values(compute("hidden/inf_norm", kin), {(4 + 5) / 2.0});  // mean over sequences of each one's largest
  check_values(compute("attn/output_inf_norm", kin), {4.5});
  CHECK_THROWS_WITH(compute("attn/output_kurtosis", in), Catch::Contains("not logged"));
}

TEST_CASE("ViT statistics: importance over all queries, CLS attention, token norms", "[stats][vit]") {
  // T = 4 tokens (CLS, 3 patches), no slot; bidirectional rows.
  const std::vector<float> w = {0.4f, 0.2f, 0.2f, 0.2f, 0.7f, 0.1f, 0.1f, 0.1f,
                                0.7f, 0.1f, 0.1f, 0.1f, 0.2f, 0.f,  0.f,  0.8f};
  std::vector<AttentionCapture> caps{capture({1, 1, 4, 4}, w)};
  std::vector<Tensor> hidden{Tensor::from({1, 4, 1}, {7, 1, 1, 5})};  // patch norms 1, 1, 5: median 1
  StatsOptions o = options(2, {0.45});
  o.vit = true, o.first_patch = 1;
  StatsInput in(caps, hidden, kNoMoE, o);
  check_values(compute("vit/alpha", in), {0.5, 0.1, 0.1, 0.3});
  check_values(compute("vit/sink_rate", in), {100, 0, 0, 0});
  check_values(compute("vit/cls_attention", in), {0.4, 0.2, 0.2, 0.2});
  check_values(compute("vit/token_norm", in), {7, 1, 1, 5});
  check_values(compute("vit/high_norm_rate", in), {100.0 / 3});
  // The generic rows read the same all-query importance.
  check_values(compute("attn/alpha", in), {0.5, 0.1});
  check_values(compute("attn/sink_rate", in), {100});
}

TEST_CASE("ViT statistics: background sinks, high-norm tokens and what they attend to, per-image rows", "[stats][vit]") {
  // The capture above: importance (0.5, 0.1, 0.1, 0.3); token norms (7, 1, 1, 5) against a median
  // patch norm of 1, so CLS and the last patch are high-norm; the last patch's row is (0.2, 0, 0, 0.8).
  const std::vector<float> w = {0.4f, 0.2f, 0.2f, 0.2f, 0.7f, 0.1f, 0.1f, 0.1f,
                                0.7f, 0.1f, 0.1f, 0.1f, 0.2f, 0.f,  0.f,  0.8f};
  std::vector<AttentionCapture> caps{capture({1, 1, 4, 4}, w)};
  std::vector<Tensor> hidden{Tensor::from({1, 4, 1}, {7, 1, 1, 5})};
  StatsOptions o = options(2, {0.25});
  o.vit = true, o.first_patch = 1;
  o.background = {0, 0, 1};  // the last patch is background
  StatsInput in(caps, hidden, kNoMoE, o);
  check_values(compute("vit/background_patches", in), {100.0 / 3});
  check_values(compute("vit/sink_background", in), {100});  // the one sink patch (0.3 > 0.25) is background
  check_values(compute("vit/high_norm_tokens", in), {100, 0, 0, 100});
  check_values(compute("vit/high_norm_background", in), {100});
  check_values(compute("vit/high_norm_attention", in), {0.2, 0, 0, 0.8});
  check_values(compute("vit/image_importance", in), {0.5, 0.1, 0.1, 0.3});
  check_values(compute("vit/image_cls_attention", in), {0.4, 0.2, 0.2, 0.2});
  check_values(compute("vit/image_token_norm", in), {7, 1, 1, 5});
  o.background = {0, 1, 0};  // now the sink and high-norm patch is foreground
  StatsInput fg(caps, hidden, kNoMoE, o);
  check_values(compute("vit/sink_background", fg), {0});
  check_values(compute("vit/high_norm_background", fg), {0});
  // The summary columns: CLS, the registers and the patches read apart by the context's first patch.
  const std::vector<float> hn = compute("vit/high_norm_tokens", in);
  const Statistic& hs = *find_statistic("vit/high_norm_tokens");
  SummaryContext ctx;
  ctx.first_patch = 1;
  CHECK(hs.summary.at(0).of_row(hn.data(), {1, 4}, ctx) == 100);  // high_norm_cls
  CHECK(std::isnan(hs.summary.at(1).of_row(hn.data(), {1, 4}, ctx)));  // no registers
  ctx.first_patch = 2;  // were token 1 a register: its rate
  CHECK(hs.summary.at(1).of_row(hn.data(), {1, 4}, ctx) == 0);
  // What the high-norm patches attend to: a layer of zeros (none there) is left out of the mean.
  const Statistic& ha = *find_statistic("vit/high_norm_attention");
  const std::vector<float> rows{0, 0, 0, 0, 0.2f, 0.1f, 0.3f, 0.4f, 0.6f, 0.3f, 0.1f, 0};  // 3 layers, 4 tokens
  ctx.first_patch = 2;  // token 1 a register
  CHECK(ha.summary.at(0).of_row(rows.data(), {3, 4}, ctx) == Approx(0.4));  // (0.2 + 0.6) / 2
  CHECK(ha.summary.at(1).of_row(rows.data(), {3, 4}, ctx) == Approx(0.2));  // (0.1 + 0.3) / 2
  CHECK(std::isnan(ha.summary.at(0).of_row(rows.data(), {1, 4}, ctx)));     // no layer has high-norm patches
  const std::vector<float> sr = compute("vit/sink_rate", in);  // importance (0.5, 0.1, 0.1, 0.3) at eps 0.25
  const Statistic& ss = *find_statistic("vit/sink_rate");
  ctx.first_patch = 1;
  CHECK(ss.summary.at(0).of_row(sr.data(), {1, 4}, ctx) == 100);  // sink_cls
  CHECK(ss.summary.at(2).of_row(sr.data(), {1, 4}, ctx) == 100);  // sink_patch: the last patch
  o.background.clear();  // without the mask the background rows are not logged
  StatsInput none(caps, hidden, kNoMoE, o);
  CHECK_THROWS_WITH(compute("vit/sink_background", none), Catch::Contains("not logged"));
}

TEST_CASE("the declaration: unique names, docs, and every computed row of a decoder capture", "[stats]") {
  std::set<std::string> names;
  for (const Statistic& s : statistics()) {
    INFO(s.name);
    CHECK(names.insert(s.name).second);
    CHECK(!s.unit.empty());
    CHECK(!s.doc.empty());
    if (!s.supersedes.empty()) CHECK(find_statistic(s.supersedes) != nullptr);
  }
  CHECK(find_statistic("train_batch/attn/alpha") == find_statistic("attn/alpha"));

  // A decoder with a kv-bias slot, an unnormalised kernel and an MoE block logs every decoder
  // statistic; each row has the size of its declared shape (compute() checks it).
  DecoderConfig c;
  c.vocab_size = 11, c.d_model = 8, c.n_layers = 2, c.n_heads = 2, c.d_ff = 10, c.context = 6;
  c.attn.kernel = "sigmoid", c.attn.kv_bias = true, c.sink_token = true;
  c.moe.experts = 3, c.moe.top_k = 2, c.moe_every = 2;
  ParamStore ps;
  Decoder dec(c, ps);
  Rng rng(3);
  ps.finalize(rng);
  std::vector<int32_t> tokens(2 * 6);
  for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = (int32_t)(i % 11);
  const Capture cap = *dec.forward(tokens, 2, 6, CaptureRequest{}).capture;
  StatsOptions o = options(3, {0.1, 0.3});
  o.sink_tokens = 1;
  StatsInput in(cap.attn, cap.hidden, cap.moe, o);
  CHECK(!in.normalized());
  for (const Statistic& s : statistics()) {
    INFO(s.name);
    if (!s.compute) continue;
    const bool vit = s.name.rfind("vit/", 0) == 0;
    CHECK((!s.logged || s.logged(in)) == !vit);
    if (vit) continue;
    const Shape shape = row_shape(s, in);
    CHECK(compute(s, in).size() == (size_t)std::accumulate(shape.begin(), shape.end(), int64_t{1},
                                                           std::multiplies<int64_t>()));
  }
  CHECK(row_shape(*find_statistic("attn/alpha"), in) == Shape{2, 2, 3});
  CHECK(row_shape(*find_statistic("moe/tokens_per_expert"), in) == Shape{1, 3});
  CHECK(row_shape(*find_statistic("hidden/top_magnitudes"), in) == Shape{2, 3});
}

TEST_CASE("the summary columns and their reductions of a logged row", "[stats]") {
  std::vector<std::string> headers;
  for (const SummaryCell& c : summary_cells({0.1, 0.3})) headers.push_back(c.header);
  // In the declaration's order; a "{eps}" column once for each threshold, within its statistic.
  CHECK(headers == std::vector<std::string>{
                       "train_loss",    "val_loss",       "test_acc",     "sink@0.1",     "sink@0.1_max",
                       "sink@0.3",      "sink@0.3_max",   "alpha1",       "v0_ratio",     "slot_alpha",
                       "slot_sink@0.1", "slot_sink@0.3",  "massive_ratio", "sink_cls@0.1", "sink_reg@0.1",
                       "sink_patch@0.1", "sink_cls@0.3",  "sink_reg@0.3", "sink_patch@0.3", "high_norm",
                       "high_norm_cls", "high_norm_reg",  "high_norm_to_cls", "high_norm_to_reg", "bg_patches",
                       "sink_bg@0.1",   "sink_bg@0.3",    "high_norm_bg", "load_top",     "router_H",
                       "router_H_first", "first_top",     "first_expert_rest", "sink_top"});
  auto column = [](const std::string& header) {
    for (const SummaryCell& c : summary_cells({0.1, 0.3}))
      if (c.header == header) return c;
    FAIL("no column " << header);
    return SummaryCell{};
  };
  const SummaryContext first{1, 0}, after_sink_token{1, 1};
  // attn/sink_rate_k [eps = 2, K = 2]: the first real token's at the second threshold.
  const SummaryCell sink = column("sink@0.3");
  CHECK(sink.statistic->name == "attn/sink_rate_k");
  CHECK(sink.eps_index == 1);
  const std::vector<float> rates = {30, 6, 50, 8};
  CHECK(sink.column->of_row(rates.data(), {2, 2}, first) == 50);
  CHECK(sink.column->of_row(rates.data(), {2, 2}, after_sink_token) == 8);
  CHECK(sink.column->over == SummaryColumn::Over::Last);
  CHECK(column("sink@0.3_max").column->over == SummaryColumn::Over::Max);
  CHECK(std::isnan(sink.column->of_row(rates.data(), {1, 2}, first)));  // no second threshold logged
  // attn/alpha [L = 1, H = 2, K = 2]: the mean over heads of the first real token's.
  const std::vector<float> alpha = {0.8f, 0.1f, 0.4f, 0.3f};
  CHECK(column("alpha1").column->of_row(alpha.data(), {1, 2, 2}, first) == Approx(0.6));
  CHECK(column("alpha1").column->of_row(alpha.data(), {1, 2, 2}, after_sink_token) == Approx(0.2));
  // attn/value_norm [L = 2, K = 3]: the sum of ||v_0|| over the sum of the mean ||v_1..||.
  const std::vector<float> v = {1, 2, 4, 2, 4, 4};
  CHECK(column("v0_ratio").column->of_row(v.data(), {2, 3}, first) == Approx(3.0 / 7));
  CHECK(std::isnan(column("v0_ratio").column->of_row(v.data(), {2, 3}, SummaryContext{0, 2})));  // nothing after
  const std::vector<float> massive = {3, 9, 4};
  CHECK(column("massive_ratio").column->of_row(massive.data(), {3}, first) == 9);
  CHECK(column("slot_alpha").column->of_row(massive.data(), {3}, first) == Approx(16.0 / 3));
  CHECK(column("slot_sink@0.3").column->of_row(massive.data(), {3}, first) == 9);
}

TEST_CASE("vectorised row statistics equal plain double loops on awkward rows", "[stats]") {
  // Weights of a kernel that does not normalise: negative entries, zeros, values near 1e30 in one
  // row (float squares of those overflow), a row of only zeros; rows of 37 keys, not a lane multiple.
  const int64_t B = 2, H = 3, T = 5, S = 37, slots = 1;
  Tensor w = Tensor::empty({B, H, T, S});
  Rng rng(11);
  for (int64_t i = 0; i < w.numel(); ++i) w.data()[i] = (float)rng.normal() * (i % 7 == 0 ? -1.f : 1.f);
  for (int64_t j = 0; j < S; ++j) w.data()[(1 * T + 2) * S + j] = j % 2 ? 3e30f : 0.f;
  for (int64_t j = 0; j < S; ++j) w.data()[(4 * T + 1) * S + j] = 0.f;

  const RowSums r = row_sums(w, slots);
  for (int64_t row = 0; row < B * H * T; ++row) {
    const float* p = w.data() + row * S;
    double rs = 0, e = 0;
    for (int64_t j = 0; j < S; ++j) rs += p[j];
    for (int64_t j = 0; j < S && rs > 0; ++j)
      if (p[j] / rs > 0) e -= p[j] / rs * std::log(p[j] / rs);
    INFO("row " << row);
    CHECK(r.row_total[row] == Approx(rs).epsilon(1e-6).margin(1e-6));
    CHECK(r.row_entropy[row] == Approx(e).epsilon(1e-5).margin(1e-6));
  }

  // Under a mask, a row's keys after its last visible one are skipped: with the weights there
  // zero, as every kernel leaves them, the same sums (an end one key short would lose a weight).
  {
    std::vector<uint8_t> mask(T * S, 0);
    Tensor z = w.clone();
    for (int64_t i = 0; i < T; ++i)
      for (int64_t j = 17 + 4 * i; j < S; ++j) mask[i * S + j] = 1;  // row 0: 17 keys, a vector and one
    for (int64_t row = 0; row < B * H * T; ++row)
      for (int64_t j = 0; j < S; ++j)
        if (mask[row % T * S + j]) z.data()[row * S + j] = 0.f;
    const RowSums all = row_sums(z, slots), skipped = row_sums(z, slots, mask);
    for (int64_t row = 0; row < B * H * T; ++row) {
      INFO("masked row " << row);
      CHECK(skipped.row_total[row] == Approx(all.row_total[row]).epsilon(1e-6).margin(1e-6));
      CHECK(skipped.row_entropy[row] == Approx(all.row_entropy[row]).epsilon(1e-5).margin(1e-6));
    }
    for (int64_t bh = 0; bh < B * H; ++bh) {
      CHECK(skipped.max[bh] == all.max[bh]);
      CHECK(skipped.slot[bh] == all.slot[bh]);
    }
  }

  const std::vector<float> imp = importance(w, slots, 4);
  for (int64_t bh = 0; bh < B * H; ++bh)
    for (int64_t k = 0; k < 4; ++k) {
      double sum = 0;
      for (int64_t i = k; i < T; ++i) sum += w.data()[(bh * T + i) * S + slots + k];
      CHECK(imp[bh * 4 + k] == Approx(sum / (T - k)).epsilon(1e-6).margin(1e-6));
    }

  // Centred logits of key 0 over the keys each query sees: the decoder's causal mask, and a
  // sliding window behind a bias slot, of the slot (two runs of visible keys a row).
  AttentionConfig sliding;
  sliding.mask = "sliding", sliding.window = 3;
  for (auto [mask, Sk] : {std::pair{causal_mask(T), T}, {Attention::make_mask(sliding, T, 1), T + 1}}) {
    const int64_t column = 0;
    INFO("keys " << Sk);
    Tensor q = Tensor::empty({B, H, T, 8}), k = Tensor::empty({B, H, Sk, 8});
    for (int64_t i = 0; i < q.numel(); ++i) q.data()[i] = (float)rng.normal();
    for (int64_t i = 0; i < k.numel(); ++i) k.data()[i] = (float)rng.normal();
    const std::vector<double> got = centred_logit(q, k, mask, column);
    // Read in place from [B, T, H, d_h] storage, as the training forward's captures are: the same.
    Tensor qt = q.permute({0, 2, 1, 3}).contiguous(), kt = k.permute({0, 2, 1, 3}).contiguous();
    CHECK(centred_logit(qt.permute({0, 2, 1, 3}), kt.permute({0, 2, 1, 3}), mask, column) == got);
    for (int64_t bh = 0; bh < B * H; ++bh) {
      double total = 0;
      int64_t rows = 0;
      for (int64_t i = 1; i < T; ++i) {
        if (mask[i * Sk + column]) continue;
        double sum = 0, first = 0;
        int64_t seen = 0;
        for (int64_t j = 0; j < Sk; ++j) {
          if (mask[i * Sk + j]) continue;
          double dot = 0;
          for (int64_t d = 0; d < 8; ++d) dot += (double)q.data()[(bh * T + i) * 8 + d] * k.data()[(bh * Sk + j) * 8 + d];
          dot /= std::sqrt(8.0);
          sum += dot, ++seen;
          if (j == column) first = dot;
        }
        total += first - sum / seen, ++rows;
      }
      CHECK(got[bh] == Approx(total / rows).epsilon(1e-5).margin(1e-5));
    }
  }

  // Norms and kurtosis stay finite for finite activations near 1e30 (their squares are not).
  Tensor x = Tensor::full({1, 4, 16}, 1e30f);
  x.data()[3] = -2e30f;
  CHECK(std::isfinite(row_norms(x)[0]));
  CHECK(row_norms(x)[1] == Approx(4e30).epsilon(1e-6));
  CHECK(std::isfinite(token_kurtosis(x)[0]));
}
