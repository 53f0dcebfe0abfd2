// Streaming evaluation (Xiao et al. 2024, StreamingLLM): the model reads streams many times
// longer than its context one token at a time through a KV cache with a policy (window W, k
// sinks; models/kv_cache.h), and the negative log-likelihood of every next token is recorded
// against its position in the stream. Without eviction (W covering the stream) it is the full
// forward's loss per position.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include "models/decoder.h"

namespace sl::train {

// streams: B rows of N + 1 tokens -> nll [B * N]: entry (b, t) is -log p(x_{t+1} | the cache
// after x_0 .. x_t). The first tokens enter the cache at once while they fit, then one by one;
// progress(t) after each position.
std::vector<float> streaming_nll(const models::Decoder& model, const std::vector<int32_t>& streams, int64_t B,
                                 const models::CachePolicy& policy, const std::function<void(int64_t)>& progress = {});

// B streams of N + 1 tokens of running text: held-out windows (`windows(rows, len)`, which start
// at documents) with the BOS between documents dropped, so that a stream's only BOS is its first
// token, as in StreamingLLM's concatenated books; a BOS inside would be a sink in every window.
std::vector<int32_t> running_text(const std::function<std::vector<int32_t>(int64_t, int64_t)>& windows, int64_t B,
                                  int64_t N, int32_t bos);

// -log softmax(logits)[target] of each row of logits [N, V].
std::vector<float> token_nll(const Tensor& logits, const std::vector<int32_t>& targets);

}  // namespace sl::train
