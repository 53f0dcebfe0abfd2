#include "train/streaming_eval.h"

#include <algorithm>

#include "engine/error.h"
#include "engine/ops.h"

namespace sl::train {

std::vector<float> token_nll(const Tensor& logits, const std::vector<int32_t>& targets) {
  const Tensor lp = log_softmax(logits).contiguous();
  const int64_t V = lp.size(1);
  std::vector<float> nll(targets.size());
  for (size_t r = 0; r < targets.size(); ++r) nll[r] = -lp.data()[r * V + targets[r]];
  return nll;
}

std::vector<int32_t> running_text(const std::function<std::vector<int32_t>(int64_t, int64_t)>& windows, int64_t B,
                                  int64_t N, int32_t bos) {
  for (int64_t len = N;; len *= 2) {  // longer windows until every row keeps N + 1 tokens
    SL_CHECK(len <= 64 * N, "streaming: the held-out data is mostly BOS; no running text of " + std::to_string(N + 1) +
                                " tokens in windows of " + std::to_string(len / 2 + 1));
    const std::vector<int32_t> w = windows(B, len);
    std::vector<int32_t> out;
    for (int64_t b = 0; b < B; ++b) {
      const int32_t* row = w.data() + b * (len + 1);
      std::vector<int32_t> kept{row[0]};
      for (int64_t t = 1; t <= len && (int64_t)kept.size() <= N; ++t)
        if (row[t] != bos) kept.push_back(row[t]);
      if ((int64_t)kept.size() <= N) break;
      out.insert(out.end(), kept.begin(), kept.end());
    }
    if ((int64_t)out.size() == B * (N + 1)) return out;
  }
}

std::vector<float> streaming_nll(const models::Decoder& model, const std::vector<int32_t>& streams, int64_t B,
                                 const models::CachePolicy& policy, const std::function<void(int64_t)>& progress) {
  NoGrad ng;
  const int64_t N = (int64_t)streams.size() / B - 1;
  SL_CHECK(N >= 1 && (int64_t)streams.size() == B * (N + 1), "streaming_nll: streams are not B rows of N + 1 tokens");
  models::KVCache cache = model.make_cache(policy);
  // At first as many tokens as the cache holds (the sink token takes one place), then one by one.
  const int64_t sink = model.config().sink_token ? 1 : 0;
  const int64_t first = std::min(N, (policy.evicts() ? policy.window : model.positions()) - sink);
  SL_CHECK(first >= 1, "streaming: a cache of W = " + std::to_string(policy.window) +
                           " tokens holds only the sink token; valid: W >= 2 for a model with a sink token");
  std::vector<float> nll(B * N);
  for (int64_t t = 0, n; t < N; t += n) {
    n = t == 0 ? first : 1;
    std::vector<int32_t> inputs, targets;
    for (int64_t b = 0; b < B; ++b) {
      const int32_t* row = streams.data() + b * (N + 1) + t;
      inputs.insert(inputs.end(), row, row + n);
      targets.insert(targets.end(), row + 1, row + 1 + n);
    }
    const std::vector<float> step = token_nll(model.decode(inputs, B, n, cache).logits, targets);
    for (int64_t b = 0; b < B; ++b) std::copy_n(step.begin() + b * n, n, nll.begin() + b * N + t);
    if (progress) progress(t + n);
  }
  return nll;
}

}  // namespace sl::train
