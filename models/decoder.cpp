#include "models/decoder.h"

#include <cmath>

namespace sl::models {

Tensor sinusoidal_positions(int64_t n, int64_t d) {
  Tensor p = Tensor::empty({n, d});
  for (int64_t t = 0; t < n; ++t)
    for (int64_t i = 0; i < d; i += 2) {
      double angle = t / std::pow(10000.0, (double)i / d);
      p.data()[t * d + i] = (float)std::sin(angle);
      if (i + 1 < d) p.data()[t * d + i + 1] = (float)std::cos(angle);
    }
  return p;
}

// The trunk's attention takes its positions from the decoder's (rope, alibi, relative act there).
static TrunkConfig trunk_of(const DecoderConfig& c) {
  TrunkConfig t = c;
  t.attn.pos = c.pos;
  return t;
}

Decoder::Decoder(const DecoderConfig& c, ParamStore& ps) : cfg_(c) {
  const int64_t D = c.d_model;
  const int64_t positions = c.context + (c.sink_token ? 1 : 0);
  wte_ = ps.add("wte", {c.vocab_size, D}, Init::normal(c.init_std), true);
  if (c.pos == "learned") wpe_ = ps.add("wpe", {positions, D}, Init::normal(c.init_std), true);
  if (c.pos == "sinusoidal") sinusoidal_ = sinusoidal_positions(positions, D);
  if (c.sink_token) sink_ = ps.add("sink_token", {1, 1, D}, Init::normal(c.init_std), true);
  trunk_ = Trunk(trunk_of(c), ps);
  if (!c.tie_embeddings) lm_head_ = ps.add("lm_head", {c.vocab_size, D}, Init::normal(c.init_std), true);
}

Tensor Decoder::embed(const std::vector<int32_t>& tokens, int64_t B, int64_t T, bool with_sink, int64_t place) const {
  const int64_t D = cfg_.d_model;
  SL_CHECK((int64_t)tokens.size() == B * T, "decoder: " + std::to_string(tokens.size()) + " tokens for batch " +
                                                 std::to_string(B) + " x length " + std::to_string(T));
  Tensor h = embedding(wte_, tokens).reshape({B, T, D});
  if (with_sink) h = concat({add(Tensor::zeros({B, 1, D}), sink_), h}, 1);
  const int64_t n = h.size(1);
  if (wpe_.defined()) h = add(h, slice(wpe_, 0, place, place + n));
  if (sinusoidal_.defined()) h = add(h, slice(sinusoidal_, 0, place, place + n));
  return h;
}

TrunkOutput Decoder::real_positions(TrunkOutput out, int64_t B, int64_t T, bool with_sink) const {
  if (with_sink) out.h = slice(out.h, 1, 1, T + 1);
  out.h = out.h.reshape({B * T, cfg_.d_model});
  return out;
}

TrunkOutput Decoder::hidden(const std::vector<int32_t>& tokens, int64_t B, int64_t T,
                            const std::optional<CaptureRequest>& capture,
                            const std::optional<Intervention>& intervention) const {
  SL_CHECK(T <= cfg_.context, "decoder: sequence length " + std::to_string(T) + " exceeds the context " +
                                  std::to_string(cfg_.context));
  const bool with_sink = sink_.defined();
  Tensor h = embed(tokens, B, T, with_sink, 0);
  std::optional<CaptureRequest> block;  // the sink token is one more position of the block
  if (capture) block = capture->within(B, h.size(1), with_sink ? 1 : 0);
  return real_positions(trunk_.forward(h, block, intervention), B, T, with_sink);
}

ModelOutput Decoder::forward(const std::vector<int32_t>& tokens, int64_t B, int64_t T,
                             const std::optional<CaptureRequest>& capture,
                             const std::optional<Intervention>& intervention) const {
  TrunkOutput out = hidden(tokens, B, T, capture, intervention);
  return {linear(out.h, output_layer()), Tensor(), out.aux_loss, std::move(out.capture)};
}

ModelOutput Decoder::loss(const std::vector<int32_t>& tokens, int64_t B, int64_t T, const std::vector<int32_t>& targets,
                          int32_t ignore_index, float z_loss, const std::optional<CaptureRequest>& capture) const {
  TrunkOutput out = hidden(tokens, B, T, capture, std::nullopt);
  return {Tensor(), linear_cross_entropy(out.h, output_layer(), targets, ignore_index, z_loss), out.aux_loss,
          std::move(out.capture)};
}

ModelOutput Decoder::decode(const std::vector<int32_t>& tokens, int64_t B, int64_t T, KVCache& cache) const {
  SL_CHECK(can_decode(),
           "decoder: a KV cache needs a causal or sliding mask; attention.mask is '" + cfg_.attn.mask + "'");
  const bool with_sink = sink_.defined() && cache.seen() == 0;
  const int64_t place = cache.admit(T + (with_sink ? 1 : 0));
  TrunkOutput out = real_positions(trunk_.forward(embed(tokens, B, T, with_sink, place), std::nullopt, std::nullopt, &cache),
                                   B, T, with_sink);
  return {linear(out.h, output_layer()), Tensor(), out.aux_loss, std::nullopt};
}

}  // namespace sl::models
