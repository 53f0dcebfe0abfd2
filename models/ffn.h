// The position-wise feed-forward network. Gated kinds (GLU family, Shazeer 2020):
//   FFN(x) = W2 (act(W1 x) * (W3 x)),  act = SiLU (swiglu), GELU (geglu), ReLU (reglu);
// plain kinds: FFN(x) = W2 act(W1 x). MoE experts are FFNs too.
#pragma once
#include <string>

#include "engine/ops.h"
#include "engine/params.h"

namespace sl::models {

struct FFNConfig {
  int64_t d_model = 256, d_ff = 688;
  std::string kind = "swiglu";  // swiglu | geglu | reglu | gelu | relu | silu
  bool bias = false;
  float init_std = 0.02f, out_init_std = 0.02f;
};

bool ffn_is_gated(const std::string& kind);

class FFN {
 public:
  FFN(const FFNConfig& cfg, ParamStore& ps, const std::string& name);
  Tensor forward(const Tensor& x) const;  // [..., D] -> [..., D]

 private:
  Tensor activation(const Tensor& h) const;
  FFNConfig cfg_;
  Tensor w1_, w2_, w3_, b1_, b2_, b3_;
};

}  // namespace sl::models
