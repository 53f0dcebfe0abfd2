#include <catch2/catch.hpp>
#include <cmath>
#include <functional>

#include "models/decoder.h"
#include "tests/error_of.h"
#include "tests/random_params.h"
#include "train/streaming_eval.h"

using namespace sl;
using namespace sl::models;

namespace {

DecoderConfig tiny_decoder(const std::function<void(DecoderConfig&)>& variant) {
  DecoderConfig c;
  c.vocab_size = 23, c.context = 16, c.d_model = 16, c.n_layers = 2, c.n_heads = 2, c.d_ff = 24;
  c.init_std = 0.2f;
  variant(c);
  return c;
}

void randomise(ParamStore& ps, uint64_t seed) { testing::randomise(ps, seed, 0.1f); }

std::vector<int32_t> tokens(int64_t n, int32_t vocab, uint64_t seed) {
  Rng rng(seed);
  std::vector<int32_t> ids(n);
  for (auto& t : ids) t = (int32_t)rng.uniform_int(vocab);
  return ids;
}

// Logits [B*T, V] of feeding B rows of T tokens to `cache`: the first `prefill` at once, then
// one at a time, reassembled in row-major order.
std::vector<float> decoded(const Decoder& m, KVCache& cache, const std::vector<int32_t>& ids, int64_t B, int64_t T,
                           int64_t prefill) {
  const int64_t V = m.config().vocab_size;
  std::vector<float> out(B * T * V);
  for (int64_t t = 0, n; t < T; t += n) {
    n = t == 0 ? prefill : 1;
    std::vector<int32_t> chunk;
    for (int64_t b = 0; b < B; ++b) chunk.insert(chunk.end(), ids.begin() + b * T + t, ids.begin() + b * T + t + n);
    Tensor logits = m.decode(chunk, B, n, cache).logits.contiguous();
    for (int64_t b = 0; b < B; ++b) std::copy_n(logits.data() + b * n * V, n * V, out.begin() + (b * T + t) * V);
  }
  return out;
}

float max_diff(const std::vector<float>& a, const Tensor& b) {
  Tensor c = b.contiguous();
  float d = 0;
  for (size_t i = 0; i < a.size(); ++i) d = std::max(d, std::fabs(a[i] - c.data()[i]));
  return d;
}

}  // namespace

TEST_CASE("decoding through a full KV cache gives the full forward's logits", "[kv_cache]") {
  struct Variant {
    const char* name;
    std::function<void(DecoderConfig&)> set;
  };
  const std::vector<Variant> variants = {
      {"rope", [](DecoderConfig&) {}},
      {"learned positions, layernorm, gelu, biases, tied (gpt2)",
       [](DecoderConfig& c) {
         c.pos = "learned", c.norm = "layernorm", c.ffn = "gelu", c.bias = true, c.tie_embeddings = true;
       }},
      {"sinusoidal positions", [](DecoderConfig& c) { c.pos = "sinusoidal"; }},
      {"alibi", [](DecoderConfig& c) { c.pos = "alibi"; }},
      {"relative",
       [](DecoderConfig& c) { c.pos = "relative", c.attn.relative_buckets = 8, c.attn.relative_max_distance = 16; }},
      {"kv-bias slot", [](DecoderConfig& c) { c.attn.kv_bias = true; }},
      {"kv-bias slot, per head, zero value",
       [](DecoderConfig& c) {
         c.attn.kv_bias = true, c.attn.kv_bias_per_head = true, c.attn.kv_bias_value_learnable = false;
       }},
      {"sink token, learned positions", [](DecoderConfig& c) { c.sink_token = true, c.pos = "learned"; }},
      {"sink token, rope", [](DecoderConfig& c) { c.sink_token = true; }},
      {"sigmoid kernel", [](DecoderConfig& c) { c.attn.kernel = "sigmoid", c.attn.sigmoid_bias = -std::log(16.f); }},
      {"sigmoid, normalised", [](DecoderConfig& c) { c.attn.kernel = "sigmoid", c.attn.normalize = true; }},
      {"elementwise gate", [](DecoderConfig& c) { c.attn.gate = "elementwise"; }},
      {"headwise gate, qk-norm", [](DecoderConfig& c) { c.attn.gate = "headwise", c.attn.qk_norm = true; }},
      {"off-by-one", [](DecoderConfig& c) { c.attn.off_by_one = true; }},
      {"sink logit", [](DecoderConfig& c) { c.attn.sink_logit = true; }},
      {"elu+1 feature map", [](DecoderConfig& c) { c.attn.kernel = "elu_plus_one", c.attn.normalize = true; }},
      {"sliding mask", [](DecoderConfig& c) { c.attn.mask = "sliding", c.attn.window = 5; }},
      {"post-norm", [](DecoderConfig& c) { c.norm_placement = "post"; }},
  };
  const int64_t B = 2, T = 12;
  for (const Variant& v : variants) {
    INFO(v.name);
    ParamStore ps;
    Decoder m(tiny_decoder(v.set), ps);
    randomise(ps, 5);
    NoGrad ng;
    const std::vector<int32_t> ids = tokens(B * T, 23, 9);
    Tensor full = m.forward(ids, B, T).logits;
    for (int64_t prefill : {1, 5}) {
      KVCache cache = m.make_cache({});
      CHECK(max_diff(decoded(m, cache, ids, B, T, prefill), full) < 1e-5f);
      CHECK(cache.seen() == T + (m.config().sink_token ? 1 : 0));
    }
  }
}

TEST_CASE("a cache policy holds, entry by entry, what its equivalent mask lets each query see", "[kv_cache][mask]") {
  // Fed one token at a time, query t sees key j iff j <= t and (j < k or t - j < W - k).
  const int64_t T = 20;
  for (auto [W, k] : {std::pair<int64_t, int64_t>{5, 0}, {5, 1}, {6, 4}, {8, 2}, {1, 0}}) {
    INFO("W=" << W << " k=" << k);
    KVCache cache({W, k}, 1, 32);
    for (int64_t t = 0; t < T; ++t) {
      CHECK(cache.admit(1) == std::min(t, W - 1));  // the new token's place
      std::vector<uint8_t> seen(T, 0);
      for (int64_t j : cache.held()) seen[j] = 1;
      for (int64_t j = 0; j < T; ++j) REQUIRE(seen[j] == (j <= t && (j < k || t - j < W - k)));
    }
  }
  // Without sinks the policy is the sliding mask of the same window.
  AttentionConfig sliding;
  sliding.mask = "sliding", sliding.window = 4;
  const std::vector<uint8_t> mask = Attention::make_mask(sliding, T, 0);
  KVCache cache({4, 0}, 1, 32);
  for (int64_t t = 0; t < T; ++t) {
    cache.admit(1);
    std::vector<uint8_t> blocked(T, 1);
    for (int64_t j : cache.held()) blocked[j] = 0;
    for (int64_t j = 0; j < T; ++j) REQUIRE(blocked[j] == mask[t * T + j]);
  }
  // A full cache holds every token; a chunk enters at once while it fits.
  KVCache full({}, 1, 8);
  CHECK(full.admit(5) == 0);
  CHECK(full.admit(3) == 5);
  CHECK(full.held() == std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7});
}

TEST_CASE("a window cache without positions is the full forward under the sliding mask", "[kv_cache]") {
  // Places in the cache are not text positions, so only a model without positions can tell that
  // a windowed cache and a sliding mask are the same computation.
  auto config = [](const std::string& mask) {
    return tiny_decoder([&](DecoderConfig& c) { c.pos = "none", c.attn.mask = mask, c.attn.window = 4; });
  };
  ParamStore ps_cache, ps_mask;
  Decoder cached(config("causal"), ps_cache), masked(config("sliding"), ps_mask);
  randomise(ps_cache, 3);
  randomise(ps_mask, 3);
  NoGrad ng;
  const int64_t B = 2, T = 14;
  const std::vector<int32_t> ids = tokens(B * T, 23, 4);
  KVCache cache = cached.make_cache({4, 0});
  CHECK(max_diff(decoded(cached, cache, ids, B, T, 4), masked.forward(ids, B, T).logits) < 1e-5f);
  CHECK(cache.held() == std::vector<int64_t>{10, 11, 12, 13});
}

TEST_CASE("bad cache policies and uses are refused with what is valid", "[kv_cache]") {
  using testing::error_of;
  CHECK_THAT(error_of([] { KVCache({4, 4}, 1, 16); }), Catch::Contains("k must be smaller than W"));
  CHECK_THAT(error_of([] { KVCache({32, 1}, 1, 16); }), Catch::Contains("W <= 16"));
  CHECK_THAT(error_of([] { KVCache({0, 2}, 1, 16); }), Catch::Contains("give W too"));
  CHECK_THAT(error_of([] { KVCache({}, 1, 4).admit(5); }), Catch::Contains("at most the model's 4 positions"));
  CHECK_THAT(error_of([] {
               KVCache c({4, 1}, 1, 16);
               c.admit(4);
               c.admit(2);
             }),
             Catch::Contains("one at a time"));
  ParamStore ps;
  Decoder prefix(tiny_decoder([](DecoderConfig& c) { c.attn.mask = "prefix", c.attn.prefix_len = 4; }), ps);
  randomise(ps, 1);
  KVCache cache = prefix.make_cache({});
  CHECK_THAT(error_of([&] { prefix.decode({1, 2}, 1, 2, cache); }), Catch::Contains("causal or sliding mask"));
}

TEST_CASE("streaming evaluation equals the full forward while the window covers the stream", "[kv_cache][streaming]") {
  const int64_t B = 2, N = 12;
  for (bool sink_token : {false, true}) {
    INFO("sink token " << sink_token);
    ParamStore ps;
    Decoder m(tiny_decoder([&](DecoderConfig& c) { c.pos = "learned", c.sink_token = sink_token; }), ps);
    randomise(ps, 8);
    NoGrad ng;
    const std::vector<int32_t> stream = tokens(B * (N + 1), 23, 6);
    std::vector<int32_t> inputs, targets;
    for (int64_t b = 0; b < B; ++b) {
      inputs.insert(inputs.end(), stream.begin() + b * (N + 1), stream.begin() + b * (N + 1) + N);
      targets.insert(targets.end(), stream.begin() + b * (N + 1) + 1, stream.begin() + (b + 1) * (N + 1));
    }
    const std::vector<float> full = train::token_nll(m.forward(inputs, B, N).logits, targets);
    const int64_t covering = N + (sink_token ? 1 : 0);
    for (CachePolicy p : {CachePolicy{covering, 0}, CachePolicy{covering, 3}, CachePolicy{}}) {
      const std::vector<float> nll = train::streaming_nll(m, stream, B, p);
      for (size_t i = 0; i < nll.size(); ++i) REQUIRE(nll[i] == Approx(full[i]).margin(1e-5));
    }
    // A window of 6 evicts from position 6 on: the positions before are the full forward's.
    const int64_t W = 6, before = W - (sink_token ? 1 : 0);
    const std::vector<float> nll = train::streaming_nll(m, stream, B, {W, 1});
    double after = 0;
    for (int64_t b = 0; b < B; ++b)
      for (int64_t t = 0; t < N; ++t) {
        if (t < before) REQUIRE(nll[b * N + t] == Approx(full[b * N + t]).margin(1e-5));
        else after += std::fabs(nll[b * N + t] - full[b * N + t]);
      }
    CHECK(after > 1e-3);
  }
}

TEST_CASE("streams of running text keep only their first BOS", "[streaming]") {
  // Windows of len + 1 tokens counting up from 100 * row, with BOS (0) at every fifth place.
  int64_t asked = 0;
  auto windows = [&](int64_t rows, int64_t len) {
    asked = len;
    std::vector<int32_t> w;
    for (int64_t b = 0; b < rows; ++b)
      for (int64_t t = 0; t <= len; ++t) w.push_back(t % 5 == 0 ? 0 : (int32_t)(100 * b + t));
    return w;
  };
  const std::vector<int32_t> s = train::running_text(windows, 2, 8, 0);
  CHECK(asked == 16);  // 8 + 1 tokens without BOS needed more than a window of 8
  CHECK(s == std::vector<int32_t>{0, 1, 2, 3, 4, 6, 7, 8, 9, /**/ 0, 101, 102, 103, 104, 106, 107, 108, 109});
  CHECK_THROWS_WITH(train::running_text([](int64_t rows, int64_t len) { return std::vector<int32_t>(rows * (len + 1), 0); },
                                        1, 4, 0),
                    Catch::Contains("mostly BOS"));
}
