// A sparse mixture-of-experts feed-forward layer (Shazeer et al. 2017; Switch, Fedus et al. 2022).
// For each token x (a row of x[N, D]) and E expert FFNs:
//   z = W_G x                              router logits [E]
//   p = softmax(z)  or  p = sigmoid(z)     router scores
//   (g, e) = top-k of p;  g <- g / sum(g)  renormalised gates of the chosen experts (optional)
//   y = sum_j g_j FFN_{e_j}(x) + sum_s Shared_s(x)
// Tokens are dispatched to their experts with gather_rows / scatter_add_rows, so every expert
// runs only on its own tokens. Without a capacity factor no assignment is dropped; with one,
// each expert takes at most C = ceil(cf * N * k / E) assignments, first choices before second
// choices, earlier tokens first; a dropped assignment contributes nothing (the residual carries x).
// Auxiliary losses, returned unweighted:
//   aux = E * sum_e f_e P_e    f_e: share of the N*k assignments routed to e (a constant),
//                              P_e: mean over tokens of p_e / sum(p)  (Switch/GShard balance loss;
//                              1 when routing is uniform)
//   z   = mean over tokens of logsumexp(z)^2   (router z-loss, ST-MoE)
#pragma once
#include <string>
#include <vector>

#include "models/ffn.h"

namespace sl::models {

struct MoEConfig {
  FFNConfig expert;  // each expert (and shared expert) is an FFN of this shape and kind
  int64_t experts = 8, top_k = 2, shared_experts = 0;
  std::string router = "softmax";  // softmax | sigmoid
  bool renormalize = true;         // gates divided by their sum over the chosen k
  float capacity_factor = 0.f;     // 0 = no dropping
};

// What the statistics read from one forward pass (all detached, tokens in row order of x).
struct MoECapture {
  int64_t tokens = 0, experts = 0, top_k = 0;
  std::vector<int32_t> choice;          // [N, k] chosen experts, best first
  std::vector<uint8_t> kept;            // [N, k] 0 where the capacity dropped the assignment
  std::vector<float> scores;            // [N, E] router scores p, normalised to sum 1 per token
  std::vector<float> output_norm;       // [N, k] ||FFN_e(x)|| of each kept assignment, 0 if dropped
  float aux_loss = 0, z_loss = 0;
};

struct MoEOutput {
  Tensor y;                  // same shape as x
  Tensor aux_loss, z_loss;   // scalars
};

class MoE {
 public:
  MoE(const MoEConfig& cfg, ParamStore& ps, const std::string& name);
  // x [..., D]; every leading position is a token.
  MoEOutput forward(const Tensor& x, MoECapture* capture = nullptr) const;
  const MoEConfig& config() const { return cfg_; }

 private:
  MoEConfig cfg_;
  Tensor router_;  // W_G [E, D]
  std::vector<FFN> experts_, shared_;
};

}  // namespace sl::models
