// What a forward pass keeps for the statistics, asked for explicitly: a forward given a
// CaptureRequest returns, beside its output, the detached activations of the request's leading
// block, the first `rows` sequences and their first `positions` tokens (-1 = all), with the keys
// they see and the attention's bias slots. Under a causal mask that block is exactly what a
// forward of just those tokens computes, so a training forward can serve as the statistics'
// probe. The block is a view of the forward's own tensors, not a copy: a training step computes
// its statistics before the backward, while the graph holds those tensors anyway, so they cost no
// memory beyond the forward's (a capture kept past the backward would keep them whole).
#pragma once
#include <algorithm>
#include <cstdint>
#include <vector>

#include "engine/tensor.h"

namespace sl::models {

struct CaptureRequest {
  int64_t rows = -1, positions = -1;
  // The request over a batch of B rows of T tokens of which the first `extra` are the model's
  // own (a sink token): those stay in the block, ahead of the requested positions.
  CaptureRequest within(int64_t B, int64_t T, int64_t extra = 0) const {
    return {rows < 0 ? B : std::min(rows, B), positions < 0 ? T : std::min(positions + extra, T)};
  }
};

struct AttentionCapture {
  Tensor probs;             // [B, H, T, S] attention weights (S = bias slots + T)
  Tensor keys, values;      // [B, H, S, d_h]
  int64_t slot_offset = 0;  // columns before the first real key (the kv-bias slot)
  // [B, H, T, d_h]: after QK-norm, RoPE and a kernel's feature map, so that the scores are
  // queries . keys / sqrt(d_h) (before ALiBi or relative biases).
  Tensor queries{};
  std::vector<uint8_t> mask{};  // [T, S], 1 = the key is hidden from the query (Attention::make_mask)
  // [H, d_h, D]: W_O^h, the part of the output projection that reads head h, so that key j
  // writes A_tj v_j W_O^h into the residual stream (before an output gate). A copy: the
  // statistics may read it after the step's update.
  Tensor out_proj{};
  Tensor output{};  // [B, T, D] the module's output, added to the residual stream
  // Each row of probs is a distribution over the keys: softmax (off-by-one and the sink logit
  // leave their missing mass to an implicit key), or a nonnegative kernel with normalize. Else
  // the statistics also score the paper's proxy weights |w| / sum |w|.
  bool normalized = true;
};

// x cut to its first extents[d] entries along each dimension d (-1: all): a detached view.
Tensor leading_block(const Tensor& x, const std::vector<int64_t>& extents);

// Per-token values of `rows` x T tokens (per_token entries each, row-major) cut to every row's
// first n tokens.
template <class V>
void leading_tokens(std::vector<V>& v, int64_t T, int64_t rows, int64_t n, int64_t per_token) {
  std::vector<V> out;
  out.reserve(rows * n * per_token);
  for (int64_t b = 0; b < rows; ++b)
    out.insert(out.end(), v.begin() + b * T * per_token, v.begin() + (b * T + n) * per_token);
  v = std::move(out);
}

}  // namespace sl::models
