#include "models/kv_cache.h"

#include "engine/error.h"
#include "engine/ops.h"

namespace sl::models {

std::string CachePolicy::str() const {
  return evicts() ? "W=" + std::to_string(window) + ",k=" + std::to_string(sinks) : "full";
}

void CachePolicy::check(int64_t positions) const {
  const std::string what = "KV cache " + str() + ": ";
  SL_CHECK(window >= 0 && sinks >= 0, what + "W and k must be >= 0");
  SL_CHECK(evicts() || sinks == 0, what + "k sink tokens are kept beside a window; give W too");
  SL_CHECK(!evicts() || sinks < window,
           what + "k must be smaller than W (the cache holds W tokens: the k sinks and " + "the W - k most recent)");
  SL_CHECK(window <= positions, what + "W exceeds the model's " + std::to_string(positions) +
                                    " positions; valid: W <= " + std::to_string(positions));
}

KVCache::KVCache(const CachePolicy& policy, int64_t layers, int64_t positions)
    : policy_(policy), positions_(positions), layers_(layers) {
  policy.check(positions);
}

int64_t KVCache::admit(int64_t incoming) {
  const int64_t n = (int64_t)held_.size(), W = policy_.window, k = policy_.sinks;
  SL_CHECK(policy_.evicts() || n + incoming <= positions_,
           "KV cache full: it holds " + std::to_string(n) + " tokens and got " + std::to_string(incoming) +
               " more; a full cache holds at most the model's " + std::to_string(positions_) + " positions");
  if (policy_.evicts() && n + incoming > W) {
    SL_CHECK(incoming == 1, "KV cache " + policy_.str() + ": takes up to W tokens at once while it has room, then " +
                                "one at a time; got " + std::to_string(incoming) + " with " + std::to_string(n) +
                                " held");
    // Keep the k sinks and the W - k - 1 most recent, making a place for the new token.
    const int64_t from = n - (W - k - 1);
    auto keep = [&](const Tensor& x) {
      Tensor tail = slice(x, 1, from, n);
      return k > 0 ? concat({slice(x, 1, 0, k), tail}, 1) : tail.contiguous();
    };
    for (LayerCache& l : layers_)
      if (l.keys.defined()) l.keys = keep(l.keys), l.values = keep(l.values);
    held_.erase(held_.begin() + k, held_.begin() + from);
  }
  const int64_t place = (int64_t)held_.size();
  for (int64_t i = 0; i < incoming; ++i) held_.push_back(seen_ + i);
  seen_ += incoming;
  return place;
}

}  // namespace sl::models
