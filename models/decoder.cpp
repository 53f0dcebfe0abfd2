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

ModelOutput Decoder::forward(const std::vector<int32_t>& tokens, int64_t B, int64_t T,
                             const std::optional<CaptureRequest>& capture) const {
  TrunkOutput out = hidden(tokens, B, T, capture);
  return {linear(out.h, output_layer()), Tensor(), out.aux_loss, std::move(out.capture)};
}

ModelOutput Decoder::loss(const std::vector<int32_t>& tokens, int64_t B, int64_t T, const std::vector<int32_t>& targets,
                          int32_t ignore_index, float z_loss, const std::optional<CaptureRequest>& capture) const {
  TrunkOutput out = hidden(tokens, B, T, capture);
  return {Tensor(), linear_cross_entropy(out.h, output_layer(), targets, ignore_index, z_loss), out.aux_loss,
          std::move(out.capture)};
}

TrunkOutput Decoder::hidden(const std::vector<int32_t>& tokens, int64_t B, int64_t T,
                            const std::optional<CaptureRequest>& capture) const {
  const auto& c = cfg_;
  const int64_t D = c.d_model;
  SL_CHECK((int64_t)tokens.size() == B * T, "decoder: " + std::to_string(tokens.size()) + " tokens for batch " +
                                                 std::to_string(B) + " x length " + std::to_string(T));
  SL_CHECK(T <= c.context, "decoder: sequence length " + std::to_string(T) + " exceeds the context " + std::to_string(c.context));

  Tensor h = embedding(wte_, tokens).reshape({B, T, D});
  if (sink_.defined()) h = concat({add(Tensor::zeros({B, 1, D}), sink_), h}, 1);
  const int64_t Tp = h.size(1);
  if (wpe_.defined()) h = add(h, slice(wpe_, 0, 0, Tp));
  if (sinusoidal_.defined()) h = add(h, slice(sinusoidal_, 0, 0, Tp));

  std::optional<CaptureRequest> block;  // the sink token is one more position of the block
  if (capture) block = capture->within(B, Tp, Tp - T);
  TrunkOutput out = trunk_.forward(h, block);
  if (sink_.defined()) out.h = slice(out.h, 1, 1, Tp);
  out.h = out.h.reshape({B * T, D});
  return out;
}

}  // namespace sl::models
