// What the two paths of the fused attention core share (ops/attention.cpp): the blocked path
// on oneDNN's batched products, and the tiled path for short windows (ops/attention_tiles.cpp).
#pragma once
#include <cstdint>
#include <vector>

#include "engine/attention_kernels.h"
#include "engine/tensor.h"

namespace sl {

// The keys query i sees, one run [lo, hi): every mask the op serves (causal, prefix, sliding,
// bidirectional) is a run per query, so row loops need no per-key test.
struct Run {
  int64_t lo, hi;
};

// A [T, T] mask's run per query; refuses a mask that gives a query more than one run.
std::vector<Run> runs_of(const std::vector<uint8_t>& mask, int64_t T);

// The longest window, and the widest head, that the tiled path takes: a (sequence, head)'s
// q, k, v, scores and their gradients then fit in L1.
constexpr int64_t kTileMax = 64;

// The attention core for T, Dh <= kTileMax, one (sequence, head) at a time, in f32 in either
// matmul precision. Returns O [B, T, H, Dh] (recorded) and sets P [B, H, T, T] (dense, the
// normalised weights: what the blocked path's single block holds).
Tensor attention_in_tiles(const Tensor& q, const Tensor& k, const Tensor& v, const std::vector<Run>& runs,
                          const AttentionKernel& kernel, float scale, float kernel_bias, bool renorm, Tensor* P);

}  // namespace sl
