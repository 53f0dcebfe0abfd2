// The fused attention core: scores, mask, kernel and weighted sum of values for every batch and
// head in a few oneDNN products and one pass over each score row, reading and writing the
// [B, T, H, Dh] layout of the projections directly (no permute copies). In f32, queries go in
// blocks of rows, each against only the span of keys its mask leaves visible: a causal mask at
// T = 256 then costs 10/16 of the full products. Each block's scores stay dense [B, H, rows, keys].
// A window of at most 64 in f32 goes to the tiled path instead (ops/attention_tiles.cpp).
#include <algorithm>
#include <cmath>
#include <limits>

#include "engine/ops.h"
#include "engine/ops/attention_core.h"
#include "engine/ops/raw.h"
#include "engine/precision.h"
#include "engine/threads.h"

namespace sl {

std::vector<Run> runs_of(const std::vector<uint8_t>& mask, int64_t T) {
  std::vector<Run> runs(T);
  for (int64_t i = 0; i < T; ++i) {
    const uint8_t* m = mask.data() + i * T;
    int64_t lo = 0, hi;
    while (lo < T && m[lo]) ++lo;
    for (hi = lo; hi < T && !m[hi];) ++hi;
    SL_CHECK(std::find(m + hi, m + T, 0) == m + T,
             "attention: the mask lets query " + std::to_string(i) + " see keys in more than one run; the fused core "
             "takes causal, prefix, sliding and bidirectional masks (one run of keys per query)");
    runs[i] = {lo, hi};
  }
  return runs;
}

namespace {

// Query rows per block in f32. In bf16 the whole sequence is one block: oneDNN runs products of
// 64-row blocks on its AVX-512 gemm instead of the AMX kernel it gives whole ones, which is
// several times slower.
constexpr int64_t kQueryBlock = 64;

// [B, T, H, Dh] dense seen as [B, H, T, Dh] (a strided view, no copy).
Tensor heads(const Tensor& x) {
  const int64_t B = x.size(0), T = x.size(1), H = x.size(2), D = x.size(3);
  return make_view(x, {B, H, T, D}, {T * H * D, D, H * D, 1}, x.impl()->offset);
}

// Positions [from, to) of a [B, H, T, Dh] view.
Tensor positions(const Tensor& x, int64_t from, int64_t to) {
  Shape s = x.shape();
  s[2] = to - from;
  return make_view(x, s, x.strides(), x.impl()->offset + from * x.strides()[2]);
}

// Query rows [r0, r1) and the keys [k0, k1) that any of them sees.
struct Block {
  int64_t r0, r1, k0, k1;
  int64_t rows() const { return r1 - r0; }
  int64_t keys() const { return k1 - k0; }
};

std::vector<Block> blocks_of(const std::vector<Run>& runs, int64_t rows_per_block) {
  const int64_t T = (int64_t)runs.size();
  std::vector<Block> blocks;
  for (int64_t r0 = 0; r0 < T; r0 += rows_per_block) {
    Block b{r0, std::min(T, r0 + rows_per_block), T, 0};
    for (int64_t i = b.r0; i < b.r1; ++i)
      if (runs[i].lo < runs[i].hi) b.k0 = std::min(b.k0, runs[i].lo), b.k1 = std::max(b.k1, runs[i].hi);
    if (b.k1 < b.k0) b.k0 = b.k1 = 0;  // every key masked: the rows attend to nothing
    blocks.push_back(b);
  }
  return blocks;
}

}  // namespace

Tensor attention(const Tensor& q_in, const Tensor& k_in, const Tensor& v_in, const std::vector<uint8_t>& mask,
                 AttnKernel kernel_id, float scale, float kernel_bias, bool normalize, Tensor* probs, int64_t probs_rows,
                 int64_t probs_len) {
  SL_CHECK(q_in.dim() == 4 && q_in.shape() == k_in.shape() && q_in.shape() == v_in.shape(),
           "attention: q, k, v must share one [B, T, H, Dh] shape, got " + shape_str(q_in.shape()) + ", " +
               shape_str(k_in.shape()) + ", " + shape_str(v_in.shape()));
  const int64_t B = q_in.size(0), T = q_in.size(1), H = q_in.size(2), Dh = q_in.size(3);
  SL_CHECK((int64_t)mask.size() == T * T, "attention: mask of " + std::to_string(mask.size()) +
                                              " entries for " + std::to_string(T) + " x " + std::to_string(T) + " scores");
  const AttentionKernel& kernel = attention_kernel(kernel_id);
  SL_CHECK(kernel.fused_row, std::string("attention: kernel '") + kernel.name + "' has no fused row; use the composed path");
  const FusedRow kernel_row = kernel.fused_row;
  const FusedGradRow kernel_grad_row = kernel.fused_grad_row;
  Tensor q = q_in.contiguous(), k = k_in.contiguous(), v = v_in.contiguous();
  const bool renorm = normalize && !kernel.distribution;
  const std::vector<Run> runs = runs_of(mask, T);
  // P of the first probs_rows sequences' first probs_len queries
  const int64_t R = probs_rows < 0 ? B : std::min(probs_rows, B), N = probs_len < 0 ? T : std::min(probs_len, T);
  // A short window in f32 runs in tiles. In bf16 it stays on the blocked path's whole-sequence
  // AMX products, whose rounding of P and dS is what bf16 precision promises.
  if (T <= kTileMax && Dh <= kTileMax && matmul_precision() == MatmulPrecision::f32) {
    Tensor P;
    Tensor out = attention_in_tiles(q, k, v, runs, kernel, scale, kernel_bias, renorm, &P);
    if (probs) *probs = make_view(P, {R, H, N, N}, P.strides(), 0);  // read-only: backward needs it
    return out;
  }
  const std::vector<Block> blocks =
      blocks_of(runs, matmul_precision() == MatmulPrecision::bf16 ? T : kQueryBlock);
  // shared by every block, and kept for the backward
  const Bf16Image q16 = bf16_image_kept(q), k16 = bf16_image_kept(k), v16 = bf16_image_kept(v);
  Tensor out = Tensor::empty({B, T, H, Dh});
  const Tensor Q = heads(q.detach()), K = heads(k.detach()), V = heads(v.detach()), O = heads(out);

  // Per block: S = scale * q k^T, then P = kernel(S) row by row (W keeps the unnormalised
  // weights when a row sum divides them), then O = P v straight into [B, T, H, Dh].
  // In bf16, P's rounding is written by the row loop and kept for the backward's dV = P^T dO.
  std::vector<Tensor> P(blocks.size()), W(blocks.size()), row_sum(blocks.size());
  std::vector<Bf16Image> P16(blocks.size());
  for (size_t i = 0; i < blocks.size(); ++i) {
    const Block& b = blocks[i];
    const int64_t rows = B * H * b.rows(), n = b.keys();
    P[i] = Tensor::empty({B, H, b.rows(), n});
    gemm(positions(Q, b.r0, b.r1), mT(positions(K, b.k0, b.k1)), P[i], nullptr, false, scale, q16, k16);
    W[i] = renorm ? Tensor::empty(P[i].shape()) : P[i];
    if (renorm) row_sum[i] = Tensor::empty({rows});
    P16[i] = bf16_image_to_fill(P[i]);
    uint16_t* p16 = P16[i].bf16 ? reinterpret_cast<uint16_t*>(P16[i].bf16->data) : nullptr;
    float *p = P[i].data(), *w = W[i].data();
#pragma omp parallel for if (rows * n > kParallelMin)
    for (int64_t r = 0; r < rows; ++r) {
      const Run run = runs[b.r0 + r % b.rows()];
      const int64_t lo = std::max<int64_t>(run.lo - b.k0, 0), hi = std::max<int64_t>(run.hi - b.k0, lo);
      float* s = p + r * n;
      const float sum = weigh_row(kernel_row, s, w + r * n, lo, hi, lo, hi, n, kernel_bias, renorm);
      if (renorm) row_sum[i].data()[r] = sum;
      if (p16) round_to_bf16(s, p16 + r * n, n);
    }
    gemm(P[i], positions(V, b.k0, b.k1), positions(O, b.r0, b.r1), nullptr, false, 1.f, P16[i], v16);
  }
  const bool whole = blocks.size() == 1 && blocks[0].rows() == T && blocks[0].keys() == T;
  if (probs) {  // zero outside the blocks
    if (whole) {  // a view of the leading block of P, read-only: backward needs it
      *probs = make_view(P[0], {R, H, N, N}, P[0].strides(), P[0].impl()->offset);
    } else {
      *probs = Tensor::zeros({R, H, N, N});
      float* all = probs->data();
      for (size_t i = 0; i < blocks.size(); ++i) {
        const Block& b = blocks[i];
        const int64_t n = b.keys(), kn = std::min(b.k1, N) - b.k0;
        if (b.r0 >= N || kn <= 0) continue;
        const float* p = P[i].data();
#pragma omp parallel for if (R * H * b.rows() * kn > kParallelMin)
        for (int64_t r = 0; r < R * H * b.rows(); ++r)  // [R, H, rows] lead P[i]'s rows
          if (const int64_t query = b.r0 + r % b.rows(); query < N)
            std::copy(p + r * n, p + r * n + kn, all + ((r / b.rows()) * N + query) * N + b.k0);
      }
    }
  }

  return record(out, "attention", {q, k, v},
                [q, k, v, P, P16, W, row_sum, blocks, whole, renorm, scale, kernel_grad_row](const Tensor&,
                                                                                             const Tensor& g) {
                  const Tensor Q = heads(q.detach()), K = heads(k.detach()), V = heads(v.detach()), dO = heads(g);
                  const Bf16Image q16 = bf16_image_kept(q), k16 = bf16_image_kept(k), v16 = bf16_image_kept(v),
                                  g16 = bf16_image(g);
                  // One block that sees every query and key writes each gradient once, into a new
                  // buffer; blocks that share keys add into zeros.
                  auto slot = [whole](const Tensor& t) { return whole ? grad_slot(t) : GradSlot{grad_of(t), false}; };
                  const GradSlot dq = needs_grad(q) ? slot(q) : GradSlot{}, dk = needs_grad(k) ? slot(k) : GradSlot{},
                                 dv = needs_grad(v) ? slot(v) : GradSlot{};
                  for (size_t i = 0; i < blocks.size(); ++i) {
                    const Block& b = blocks[i];
                    const int64_t rows = P[i].size(0) * P[i].size(1) * b.rows(), n = b.keys();
                    const Tensor dOb = positions(dO, b.r0, b.r1);
                    if (needs_grad(v))  // dV = P^T dO
                      gemm(mT(P[i]), dOb, positions(heads(dv.grad), b.k0, b.k1), nullptr, !dv.first, 1.f, P16[i], g16);
                    // dP = dO V^T, turned in place into dS = dP * dP/dS, row by row.
                    Tensor dS = Tensor::empty(P[i].shape());
                    gemm(dOb, mT(positions(V, b.k0, b.k1)), dS, nullptr, false, 1.f, g16, v16);
                    const Bf16Image dS16 = bf16_image_to_fill(dS);  // rounded row by row below
                    uint16_t* ds16 = dS16.bf16 ? reinterpret_cast<uint16_t*>(dS16.bf16->data) : nullptr;
                    float* d = dS.data();
                    const float *p = P[i].data(), *w = W[i].data();
#pragma omp parallel for if (rows * n > kParallelMin)
                    for (int64_t r = 0; r < rows; ++r) {
                      weigh_grad_row(kernel_grad_row, d + r * n, p + r * n, w + r * n, n,
                                     renorm ? row_sum[i].data()[r] : 0.f, renorm);
                      if (ds16) round_to_bf16(d + r * n, ds16 + r * n, n);
                    }
                    // S = scale * q k^T:  dq = scale * dS k,  dk = scale * dS^T q
                    if (needs_grad(q))
                      gemm(dS, positions(K, b.k0, b.k1), positions(heads(dq.grad), b.r0, b.r1), nullptr, !dq.first,
                           scale, dS16, k16);
                    if (needs_grad(k))
                      gemm(mT(dS), positions(Q, b.r0, b.r1), positions(heads(dk.grad), b.k0, b.k1), nullptr,
                           !dk.first, scale, dS16, q16);
                  }
                });
}

}  // namespace sl
