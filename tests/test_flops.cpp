// The training FLOP count of models/flops.h on hand-counted shapes: the input embedding is not
// counted, a tied table counts once as the output layer, an MoE block counts the experts a
// token goes to.
#include <catch2/catch.hpp>

#include "engine/params.h"
#include "models/flops.h"

using namespace sl;
using namespace sl::models;

TEST_CASE("flops: the parameters a token multiplies, by hand") {
  DecoderConfig c;  // LLaMA style: d 256, 4 layers, SwiGLU 688, vocabulary 256, untied
  // per layer q, k, v, o (4 d^2) and w1, w2, w3 (3 d d_ff); then the output layer V d
  CHECK(matmul_params_per_token(c) == 4 * (4 * 256 * 256 + 3 * 256 * 688) + 256 * 256);
  // the calibrated shape: 8.3 MFLOP per token at a 4096-token vocabulary
  c.d_model = 128, c.d_ff = 344, c.vocab_size = 4096, c.context = 64;
  CHECK(train_flops_per_token(c, 64) == 6.0 * (4 * (4 * 128 * 128 + 3 * 128 * 344) + 4096 * 128) + 12.0 * 4 * 128 * 64);
  CHECK(train_flops_per_token(c, 64) == Approx(8.28e6).epsilon(1e-3));

  // Against the decoder's own parameters: all of them but the embedding table and the norms'
  // gains, untied; tied, the one table counts (as the output layer).
  for (bool tied : {false, true}) {
    c.tie_embeddings = tied;
    ParamStore ps;
    Decoder model(c, ps);
    const int64_t gains = (2 * c.n_layers + 1) * c.d_model, table = c.vocab_size * c.d_model;
    CHECK(matmul_params_per_token(c) == ps.count() - gains - (tied ? 0 : table));
  }

  SECTION("a non-gated FFN has two matrices, a gate adds d^2") {
    c.ffn = "gelu", c.attn.gate = "elementwise";
    CHECK(matmul_params_per_token(c) == 4 * (5 * 128 * 128 + 2 * 128 * 344) + 4096 * 128);
  }
  SECTION("an MoE block: the router and the top_k and shared experts") {
    c.moe.experts = 8, c.moe.top_k = 2, c.moe.shared_experts = 1, c.moe.expert.d_ff = 100, c.moe_every = 2;
    const int64_t attn = 4 * 128 * 128, dense = 3 * 128 * 344, moe = 8 * 128 + 3 * 3 * 128 * 100;
    CHECK(matmul_params_per_token(c) == 2 * (attn + dense) + 2 * (attn + moe) + 4096 * 128);
  }
}
