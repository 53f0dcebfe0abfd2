// Attention-sink statistics of a ViT. Attention is bidirectional, so a key token's importance
// averages over ALL queries:  alpha_j = 1/T sum_i A[i, j]  for every key token j (CLS,
// registers, patches), unlike the causal alpha_p of sink_stats.h, which averages over i >= p.
// Token j is a sink in a (layer, head, image) when alpha_j > eps.
#pragma once
#include <vector>

#include "models/sink_stats.h"
#include "models/vit.h"

namespace sl::models {

struct ViTStats {
  int64_t layers = 0, heads = 0, tokens = 0, first_patch = 0, grid = 0;
  // The generic statistics (entropy, norms, ...) with alpha, sink_rate and sink_rate_k replaced
  // by their all-query versions for the first K tokens.
  SinkStats base;
  std::vector<float> alpha;           // [L, H, N] mean over images
  std::vector<float> sink_rate;       // [eps, N] percent of (layer, head, image) with alpha_j > eps
  std::vector<float> cls_attention;   // [L, H, N] attention of the CLS query, mean over images
  std::vector<float> token_norm;      // [L, N] mean ||h_j|| after each block
  std::vector<float> high_norm_rate;  // [L] percent of patch tokens with ||h|| > 2 x the image's median patch norm
};

// alpha[b, h, j] over all T queries, for every real key j (after `slots` bias slots).
std::vector<float> importance_all_queries(const Tensor& probs, int64_t slots);

ViTStats compute_vit_stats(const Capture& cap, int64_t first_patch, int64_t grid, const SinkStatsOptions& opt);

}  // namespace sl::models
