#include "models/intervention.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "engine/error.h"

namespace sl::models {

namespace {

// A dense copy of x, without history, for editing in place.
Tensor editable(const Tensor& x) { return x.detach().contiguous().clone(); }

// Calls f(n, h) for n < N and every head h < H that `head` selects (-1: all).
template <class F>
void for_heads(int64_t N, int64_t H, int64_t head, const char* what, F f) {
  SL_CHECK(head < H,
           std::string(what) + ": no head " + std::to_string(head) + " (the layer has " + std::to_string(H) + ")");
  for (int64_t n = 0; n < N; ++n)
    for (int64_t h = 0; h < H; ++h)
      if (head < 0 || h == head) f(n, h);
}

}  // namespace

Tensor drop_sink_attention(const Tensor& A, int64_t head, bool rescale) {
  Tensor out = editable(A);
  const int64_t B = A.size(0), H = A.size(1), T = A.size(2), S = A.size(3);
  for_heads(B, H, head, "drop_sink_attention", [&](int64_t b, int64_t h) {
    for (int64_t i = 0; i < T; ++i) {
      float* row = out.data() + ((b * H + h) * T + i) * S;
      const double total = std::accumulate(row, row + S, 0.0);
      row[0] = 0.f;
      const double left = std::accumulate(row + 1, row + S, 0.0);
      if (rescale && left != 0)
        for (int64_t j = 1; j < S; ++j) row[j] = (float)(row[j] * total / left);
    }
  });
  return out;
}

Tensor replace_sink_value(const Tensor& v, int64_t head, bool to_mean) {
  Tensor out = editable(v);
  const int64_t B = v.size(0), H = v.size(1), S = v.size(2), dh = v.size(3);
  for_heads(B, H, head, "replace_sink_value", [&](int64_t b, int64_t h) {
    float* keys = out.data() + (b * H + h) * S * dh;  // key j's value at keys + j * dh
    for (int64_t d = 0; d < dh; ++d) {
      double mean = 0;
      for (int64_t j = 1; to_mean && j < S; ++j) mean += keys[j * dh + d] / (double)(S - 1);
      keys[d] = (float)mean;
    }
  });
  return out;
}

Tensor zero_head(const Tensor& o, int64_t head) {
  Tensor out = editable(o);
  const int64_t B = o.size(0), T = o.size(1), H = o.size(2), dh = o.size(3);
  for_heads(B * T, H, head, "zero_head",
            [&](int64_t bt, int64_t h) { std::fill_n(out.data() + (bt * H + h) * dh, dh, 0.f); });
  return out;
}

Tensor ablate_massive_activations(const Tensor& h, const HiddenEdit& e) {
  Tensor out = editable(h);
  const int64_t B = h.size(0), T = h.size(1), D = h.size(2);
  SL_CHECK(e.channels >= 1 && e.channels <= D, "massive-activation ablation: k = " + std::to_string(e.channels) +
                                                   " channels; valid: 1 to d_model = " + std::to_string(D));
  SL_CHECK(!e.to_mean || T > 1, "massive-activation ablation to the mean needs other positions than the first");
  for (int64_t b = 0; b < B; ++b) {
    float* seq = out.data() + b * T * D;  // position t, channel c at seq[t * D + c]
    std::vector<int64_t> c(D);
    std::iota(c.begin(), c.end(), 0);
    std::partial_sort(c.begin(), c.begin() + e.channels, c.end(),
                      [&](int64_t x, int64_t y) { return std::fabs(seq[x]) > std::fabs(seq[y]); });
    for (int64_t n = 0; n < e.channels; ++n) {
      double mean = 0;
      for (int64_t t = 1; e.to_mean && t < T; ++t) mean += seq[t * D + c[n]] / (double)(T - 1);
      seq[c[n]] = (float)mean;
    }
  }
  return out;
}

}  // namespace sl::models
