// The attention core of a short window (T, Dh <= 64), one (sequence, head) at a time, in f32.
// A head's q, k, v, scores and their gradients are at most 16 KB each and stay in L1 while all
// six products and both row passes run over them, where the blocked path makes a dozen oneDNN
// calls over [B, H, T, T] tensors, each call with its own threads; the whole op is one parallel
// loop over (sequence, head). Each product is a loop of register tiles, 4 rows by up to 4
// vectors, bounded by the keys (or queries) its rows' mask runs reach: a causal window computes
// about half of every product.
#include <algorithm>
#include <cstring>

#include "engine/ops.h"
#include "engine/ops/attention_core.h"
#include "engine/ops/raw.h"
#include "engine/threads.h"

namespace sl {

namespace {

// floats in a vector register
#if defined(__AVX512F__)
constexpr int64_t kLanes = 16;
#elif defined(__AVX__)
constexpr int64_t kLanes = 8;
#else
constexpr int64_t kLanes = 4;
#endif
typedef float Vec __attribute__((vector_size(kLanes * sizeof(float))));
constexpr int64_t kRows = 4;  // rows of a register tile
constexpr int64_t kCols = 4;  // vectors in a register tile's row, at most

Vec load(const float* p) {
  Vec v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
void store(float* p, Vec v) { std::memcpy(p, &v, sizeof v); }

int64_t in_vectors(int64_t n) { return (n + kLanes - 1) / kLanes; }

// c[r, 0 : C vectors) = alpha * sum_{k in [k0, k1)} a[r * ars + k * acs] * b[k * ldb, 0 : C vectors)
// (+ c when `add`) for the kRows rows r: a's strides let it be read transposed.
template <int C>
void tile(const float* a, int64_t ars, int64_t acs, const float* b, int64_t ldb, int64_t k0, int64_t k1, float alpha,
          float* c, int64_t ldc, bool add) {
  Vec acc[kRows][C] = {};
  for (int64_t k = k0; k < k1; ++k) {
    Vec bk[C];
#pragma GCC unroll 4
    for (int j = 0; j < C; ++j) bk[j] = load(b + k * ldb + j * kLanes);
#pragma GCC unroll 4
    for (int r = 0; r < kRows; ++r) {
      const float x = a[r * ars + k * acs];
#pragma GCC unroll 4
      for (int j = 0; j < C; ++j) acc[r][j] += x * bk[j];
    }
  }
  for (int r = 0; r < kRows; ++r)
    for (int j = 0; j < C; ++j) {
      float* cj = c + r * ldc + j * kLanes;
      store(cj, add ? load(cj) + acc[r][j] * alpha : acc[r][j] * alpha);
    }
}

// What the register tile of rows [4t, 4t + 4) reduces over, [k0, k1), and the vectors of its
// output row it writes, [v0, v1).
struct Span {
  int64_t k0, k1, v0, v1;
};

// Rows of floats, `ld` apart, each a whole number of vectors.
struct Rows {
  float* p;
  int64_t ld;
};

// c (+)= alpha * a b over the rows [0, 4 * spans.size()), tile t bounded by spans[t]; a(r, k) =
// a[r * ars + k * acs].
void product(const std::vector<Span>& spans, const float* a, int64_t ars, int64_t acs, Rows b, float alpha, Rows c,
             bool add = false) {
  for (size_t t = 0; t < spans.size(); ++t) {
    const Span& s = spans[t];
    const int64_t i = (int64_t)t * kRows;
    for (int64_t v = s.v0; v < s.v1; v += kCols) {
      const float *ai = a + i * ars, *bv = b.p + v * kLanes;
      float* cv = c.p + i * c.ld + v * kLanes;
      switch (std::min(kCols, s.v1 - v)) {
        case 1: tile<1>(ai, ars, acs, bv, b.ld, s.k0, s.k1, alpha, cv, c.ld, add); break;
        case 2: tile<2>(ai, ars, acs, bv, b.ld, s.k0, s.k1, alpha, cv, c.ld, add); break;
        case 3: tile<3>(ai, ars, acs, bv, b.ld, s.k0, s.k1, alpha, cv, c.ld, add); break;
        default: tile<4>(ai, ars, acs, bv, b.ld, s.k0, s.k1, alpha, cv, c.ld, add); break;
      }
    }
  }
}
// The same with a read row by row (a(r, k) = a.p[r * a.ld + k]) or transposed (a.p[k * a.ld + r]).
void product(const std::vector<Span>& spans, Rows a, Rows b, float alpha, Rows c, bool add = false) {
  product(spans, a.p, a.ld, 1, b, alpha, c, add);
}
void product_transposed(const std::vector<Span>& spans, Rows a, Rows b, float alpha, Rows c, bool add = false) {
  product(spans, a.p, 1, a.ld, b, alpha, c, add);
}

// The bounds of every product, from the mask's runs (the same for every sequence and head).
struct Spans {
  std::vector<Span> scores;      // rows: queries; reduce over Dh; write the vectors of keys seen
  std::vector<Span> by_keys;     // rows: queries; reduce over the keys seen; write all of Dh
  std::vector<Span> by_queries;  // rows: keys; reduce over the queries that see them; all of Dh
};

Spans spans_of(const std::vector<Run>& runs, int64_t Dh) {
  const int64_t T = (int64_t)runs.size(), tiles = (T + kRows - 1) / kRows, dv = in_vectors(Dh);
  Spans s;
  for (int64_t t = 0; t < tiles; ++t) {
    int64_t lo = T, hi = 0, qlo = T, qhi = 0;
    for (int64_t i = t * kRows; i < std::min(T, (t + 1) * kRows); ++i)
      if (runs[i].lo < runs[i].hi) lo = std::min(lo, runs[i].lo), hi = std::max(hi, runs[i].hi);
    for (int64_t i = 0; i < T; ++i)  // queries whose run meets the keys [4t, 4t + 4)
      if (runs[i].lo < std::min(T, (t + 1) * kRows) && runs[i].hi > t * kRows) qlo = std::min(qlo, i), qhi = i + 1;
    if (hi <= lo) lo = hi = 0;
    if (qhi <= qlo) qlo = qhi = 0;
    s.scores.push_back({0, Dh, lo / kLanes, in_vectors(hi)});
    s.by_keys.push_back({lo, hi, 0, dv});
    s.by_queries.push_back({qlo, qhi, 0, dv});
  }
  return s;
}

// dst[0, n) = src[0, n) in place: GCC would turn the loop into a call of memcpy, which costs more
// than a short row's copy itself.
__attribute__((optimize("no-tree-loop-distribute-patterns"))) void copy(float* dst, const float* src, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) dst[i] = src[i];
}

// The layout of one op call: q, k, v, O and their gradients [B, T, H, Dh], P and W [B, H, T, T].
// A (sequence, head)'s rows are read and written where they lie when they are whole vectors and
// whole register tiles (Dh a multiple of the vector, T of 4); otherwise, and for the transposed
// operands, through a thread's tiles.
struct Layout {
  int64_t T, H, Dh, ldt, ldd;  // ldt, ldd: a tile's row stride for keys and for Dh
  bool heads_in_place, probs_in_place;

  Layout(int64_t T, int64_t H, int64_t Dh)
      : T(T), H(H), Dh(Dh), ldt(in_vectors(T) * kLanes), ldd(in_vectors(Dh) * kLanes),
        heads_in_place(Dh % kLanes == 0 && T % kRows == 0), probs_in_place(T % kLanes == 0) {}

  float* head(const float* x, int64_t b, int64_t h) const { return const_cast<float*>(x) + (b * T * H + h) * Dh; }
  // Head h of sequence b of x as rows to read.
  Rows read(const float* x, int64_t b, int64_t h, float* tile) const {
    const float* x0 = head(x, b, h);
    if (heads_in_place) return {const_cast<float*>(x0), H * Dh};
    for (int64_t i = 0; i < T; ++i) copy(tile + i * ldd, x0 + i * H * Dh, Dh);
    return {tile, ldd};
  }
  // Its transpose [Dh, T], always through the tile.
  Rows read_transposed(const float* x, int64_t b, int64_t h, float* tile) const {
    const float* x0 = head(x, b, h);
    for (int64_t d = 0; d < Dh; ++d)
#pragma omp simd
      for (int64_t i = 0; i < T; ++i) tile[d * ldt + i] = x0[i * H * Dh + d];
    return {tile, ldt};
  }
  // Rows to write head h of sequence b of x into; written() finishes them.
  Rows write(float* x, int64_t b, int64_t h, float* tile) const {
    return heads_in_place ? Rows{head(x, b, h), H * Dh} : Rows{tile, ldd};
  }
  // Whether a product into write()'s rows adds to x rather than overwrites it (`first`: x holds
  // no value yet).
  bool adds(bool first) const { return heads_in_place && !first; }
  void written(Rows r, float* x, int64_t b, int64_t h, bool first) const {
    if (heads_in_place) return;
    for (int64_t i = 0; i < T; ++i) {
      float* xi = head(x, b, h) + i * H * Dh;
      const float* ri = r.p + i * r.ld;
      if (first) copy(xi, ri, Dh);
      else
#pragma omp simd
        for (int64_t d = 0; d < Dh; ++d) xi[d] += ri[d];
    }
  }
  // The [T, T] probabilities of (sequence, head) bh as tile rows: in place, or a tile that
  // stored() copies back / that read_probs() fills.
  Rows probs(float* x, int64_t bh, float* tile) const {
    return probs_in_place ? Rows{x + bh * T * T, T} : Rows{tile, ldt};
  }
  void stored(Rows r, float* x, int64_t bh, int64_t i) const {
    if (!probs_in_place) copy(x + (bh * T + i) * T, r.p + i * r.ld, T);
  }
  Rows read_probs(const float* x, int64_t bh, float* tile) const {
    if (probs_in_place) return {const_cast<float*>(x) + bh * T * T, T};
    for (int64_t i = 0; i < T; ++i) copy(tile + i * ldt, x + (bh * T + i) * T, T);
    return {tile, ldt};
  }
};

// One thread's tiles, kept from call to call. Their padding (rows past T, lanes past T or Dh)
// holds values of earlier calls, which reach only output rows and lanes that are never stored.
struct alignas(64) Tiles {
  float t[10][kTileMax * kTileMax];
};
Tiles& thread_tiles() {
  static thread_local Tiles tiles;
  return tiles;
}

// f(b, h, tiles) for every (sequence b, head h), on the threads when `parallel`.
template <class F>
void each_head(int64_t B, int64_t H, bool parallel, const F& f) {
#pragma omp parallel if (parallel)
  {
    Tiles& tiles = thread_tiles();
#pragma omp for schedule(static)
    for (int64_t bh = 0; bh < B * H; ++bh) f(bh / H, bh % H, tiles.t);
  }
}

}  // namespace

Tensor attention_in_tiles(const Tensor& q, const Tensor& k, const Tensor& v, const std::vector<Run>& runs,
                          const AttentionKernel& kernel, float scale, float kernel_bias, bool renorm, Tensor* P_out) {
  const int64_t B = q.size(0), T = q.size(1), H = q.size(2), Dh = q.size(3);
  SL_CHECK(T <= kTileMax && Dh <= kTileMax, "attention_in_tiles: T and Dh must be at most " + std::to_string(kTileMax));
  const Layout at(T, H, Dh);
  const Spans spans = spans_of(runs, Dh);
  const FusedRow kernel_row = kernel.fused_row;
  const FusedGradRow kernel_grad_row = kernel.fused_grad_row;
  const bool parallel = B * H * T * T * Dh > kParallelMin;

  Tensor out = Tensor::empty({B, T, H, Dh}), P = Tensor::empty({B, H, T, T});
  Tensor W = renorm ? Tensor::empty(P.shape()) : P, row_sum = renorm ? Tensor::empty({B, H, T}) : Tensor();
  const float *xq = q.data(), *xk = k.data(), *xv = v.data();
  float *xo = out.data(), *xp = P.data(), *xw = W.data(), *xs = renorm ? row_sum.data() : nullptr;
  each_head(B, H, parallel, [&](int64_t b, int64_t h, float(*tile)[kTileMax * kTileMax]) {
    const int64_t bh = b * H + h;
    const Rows Q = at.read(xq, b, h, tile[0]), Kt = at.read_transposed(xk, b, h, tile[1]),
               V = at.read(xv, b, h, tile[2]), S = at.probs(xp, bh, tile[3]),
               Wr = renorm ? at.probs(xw, bh, tile[4]) : S, O = at.write(xo, b, h, tile[5]);
    product(spans.scores, Q, Kt, scale, S);  // S = scale q k^T
    for (int64_t i = 0; i < T; ++i) {        // P = kernel(S), zero where masked; W / sum when renormalised
      const int64_t lo = runs[i].lo, hi = std::max(runs[i].lo, runs[i].hi);
      // The row pass runs over whole vectors of keys.
      const int64_t lo0 = lo / kLanes * kLanes, hi0 = std::min(in_vectors(hi) * kLanes, S.ld);
      const float sum = weigh_row(kernel_row, S.p + i * S.ld, Wr.p + i * Wr.ld, lo, hi, lo0, hi0, S.ld, kernel_bias, renorm);
      if (renorm) {
        xs[bh * T + i] = sum;
        at.stored(Wr, xw, bh, i);
      }
      at.stored(S, xp, bh, i);
    }
    product(spans.by_keys, S, V, 1.f, O);  // O = P v
    at.written(O, xo, b, h, true);
  });
  *P_out = P;

  return record(
      out, "attention", {q, k, v},
      [q, k, v, P, W, row_sum, runs, spans, renorm, scale, kernel_grad_row, at, parallel](const Tensor&,
                                                                                          const Tensor& g) {
        const int64_t B = q.size(0), T = q.size(1), H = q.size(2);
        const Tensor gc = g.contiguous();
        // Slots in the order they are written, so that aliased inputs add rather than overwrite.
        GradSlot dv = needs_grad(v) ? grad_slot(v) : GradSlot{}, dq = needs_grad(q) ? grad_slot(q) : GradSlot{},
                 dk = needs_grad(k) ? grad_slot(k) : GradSlot{};
        const float *xq = q.data(), *xk = k.data(), *xv = v.data(), *xg = gc.data(), *xp = P.data(), *xw = W.data(),
                    *xs = renorm ? row_sum.data() : nullptr;
        each_head(B, H, parallel, [&](int64_t b, int64_t h, float(*tile)[kTileMax * kTileMax]) {
          const int64_t bh = b * H + h;
          const Rows Q = at.read(xq, b, h, tile[0]), K = at.read(xk, b, h, tile[1]),
                     Vt = at.read_transposed(xv, b, h, tile[2]), dO = at.read(xg, b, h, tile[3]),
                     Pr = at.read_probs(xp, bh, tile[4]), Wr = renorm ? at.read_probs(xw, bh, tile[5]) : Pr;
          const Rows dS{tile[6], at.ldt};
          auto gradient = [&](GradSlot& slot, float* tile, auto&& product_into) {
            const Rows d = at.write(slot.grad.data(), b, h, tile);
            product_into(d, at.adds(slot.first));
            at.written(d, slot.grad.data(), b, h, slot.first);
          };
          if (dv.grad.defined())  // dV = P^T dO
            gradient(dv, tile[9], [&](Rows d, bool add) { product_transposed(spans.by_queries, Pr, dO, 1.f, d, add); });
          product(spans.scores, dO, Vt, 1.f, dS);  // dP = dO v^T
          for (int64_t i = 0; i < T; ++i) {        // dP -> dS, row by row
            // The keys [0, hi) (P = W = 0 outside the run), the rest zero for the products after
            const int64_t lo = runs[i].lo, hi = std::max(runs[i].lo, runs[i].hi);
            float* dr = dS.p + i * dS.ld;
            std::fill(dr, dr + lo, 0.f), std::fill(dr + hi, dr + T, 0.f);
            weigh_grad_row(kernel_grad_row, dr, Pr.p + i * Pr.ld, Wr.p + i * Wr.ld, hi, renorm ? xs[bh * T + i] : 0.f,
                           renorm);
          }
          if (dq.grad.defined())  // dq = scale dS k
            gradient(dq, tile[7], [&](Rows d, bool add) { product(spans.by_keys, dS, K, scale, d, add); });
          if (dk.grad.defined())  // dk = scale dS^T q
            gradient(dk, tile[8],
                     [&](Rows d, bool add) { product_transposed(spans.by_queries, dS, Q, scale, d, add); });
        });
      });
}

}  // namespace sl
