// Routing statistics of the MoE blocks on one forward pass, and how routing meets attention
// sinks. A token (b, p) of block l is a sink token when, in some head of that block's attention,
// its importance alpha_p (sink_stats.h: mean attention it receives from the queries that see it)
// exceeds eps. Shares are over top-k assignments, so each row over experts sums to 1.
#pragma once
#include <vector>

#include "models/attention.h"
#include "models/moe.h"

namespace sl::models {

struct MoEStats {
  int64_t layers = 0, experts = 0;         // MoE blocks M, experts E
  std::vector<float> block;                // [M] block index of each MoE layer
  std::vector<float> tokens_per_expert;    // [M, E] assignments each expert processed (after capacity)
  std::vector<float> dropped;              // [M] percent of assignments dropped by the capacity
  std::vector<float> router_entropy;       // [M] mean over tokens of H(p), nats (log E = uniform)
  std::vector<float> router_entropy_first; // [M] the same over the first tokens only
  std::vector<float> first_token_experts;  // [M, E] share of the first tokens' assignments
  std::vector<float> sink_token_experts;   // [M, E] share of the sink tokens' assignments (0 if none)
  // [M] share of the other tokens' assignments that go to the expert the first tokens use most:
  // 1/E when that expert serves the rest like any other, near 0 when it specialises in the first token
  std::vector<float> first_expert_rest_share;
  std::vector<float> sink_tokens;          // [M] percent of tokens that are sinks
  std::vector<float> expert_norm_max;      // [M, E] largest ||FFN_e(x)|| (massive activations)
  std::vector<float> aux_loss, z_loss;     // [M] unweighted
};

// moe and attn per block (moe[l].tokens == 0 for dense blocks); tokens are B rows of T.
MoEStats compute_moe_stats(const std::vector<MoECapture>& moe, const std::vector<AttentionCapture>& attn, float eps);

}  // namespace sl::models
