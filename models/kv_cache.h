// Incremental decoding: every attention layer keeps the keys and values of the tokens it has
// seen, so that the next token costs one row of attention instead of a forward of the whole
// sequence. A policy decides which tokens stay (StreamingLLM, Xiao et al. 2024):
//   full        every token, up to the model's positions
//   window W    the W most recent tokens (the new one included)
//   k sinks     the first k tokens and the W - k most recent: W tokens in all, k < W
// Positions are places in the cache, not in the text: the token at place p is rotated (RoPE),
// embedded (learned positions) or biased (ALiBi, relative) as position p, so positions never
// exceed the W places the model was trained on. Keys are kept before the rotary embedding, which
// is applied to the whole cache at every step. Under full, places are text positions and the
// logits are the full forward's.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace sl::models {

struct CachePolicy {
  int64_t window = 0;  // W, tokens held; 0: full
  int64_t sinks = 0;   // k, the first tokens never evicted
  bool evicts() const { return window > 0; }
  std::string str() const;  // "full", "W=32,k=4"
  // Checks the policy against a model of `positions` places; the error names what is valid.
  void check(int64_t positions) const;
};

// One layer's cached tokens: [B, n, H, d_h] each, in cache order.
struct LayerCache {
  Tensor keys, values;
};

class KVCache {
 public:
  // For a model of `layers` blocks and `positions` places (its context, and a sink token).
  KVCache(const CachePolicy& policy, int64_t layers, int64_t positions);

  // Makes room for `incoming` new tokens, evicting what the policy drops, and returns the place
  // of the first of them. Once a cache that evicts is full, it takes one token at a time.
  int64_t admit(int64_t incoming);
  LayerCache& layer(int64_t l) { return layers_.at(l); }
  int64_t seen() const { return seen_; }  // tokens admitted so far
  // The text positions held, in cache order (ascending).
  const std::vector<int64_t>& held() const { return held_; }
  const CachePolicy& policy() const { return policy_; }

 private:
  CachePolicy policy_;
  int64_t positions_;
  std::vector<LayerCache> layers_;
  std::vector<int64_t> held_;
  int64_t seen_ = 0;
};

}  // namespace sl::models
