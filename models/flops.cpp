#include "models/flops.h"

namespace sl::models {

int64_t matmul_params_per_token(const DecoderConfig& c) {
  const int64_t D = c.d_model;
  auto ffn = [D](const std::string& kind, int64_t d_ff) { return (ffn_is_gated(kind) ? 3 : 2) * D * d_ff; };
  int64_t gate = c.attn.gate == "elementwise" ? D * D : c.attn.gate == "headwise" ? c.n_heads * D : 0;
  int64_t n = 0;
  for (int64_t l = 0; l < c.n_layers; ++l) {
    n += 4 * D * D + gate;
    if (!is_moe_block(c, l)) {
      n += ffn(c.ffn, c.d_ff);
    } else {
      const int64_t d_ff = c.moe.expert.d_ff > 0 ? c.moe.expert.d_ff : c.d_ff;
      n += c.moe.experts * D + (c.moe.top_k + c.moe.shared_experts) * ffn(c.ffn, d_ff);
    }
  }
  return n + c.vocab_size * D;
}

double train_flops_per_token(const DecoderConfig& c, int64_t T) {
  return 6.0 * (double)matmul_params_per_token(c) + 12.0 * (double)(c.n_layers * c.d_model * T);
}

}  // namespace sl::models
