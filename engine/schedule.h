// Learning-rate schedules: linear warmup, then cosine or linear decay (or none).
//
// With m = peak * min_ratio and step s counted from 0:
//   s < warmup:            lr = peak * (s + 1) / warmup      (reaches peak at s = warmup - 1)
//   Constant, s >= warmup: lr = peak
//   otherwise, with progress q = (s - warmup) / (total - warmup), clamped to [0, 1]
//   (q = 1 for s >= total, also when total <= warmup):
//     Cosine: lr = m + (peak - m) * (1 + cos(pi q)) / 2
//     Linear: lr = peak - (peak - m) * q
// So lr = peak at s = warmup, (peak + m) / 2 halfway (cosine and linear), and m from s = total on.
#pragma once
#include <cstdint>

namespace sl {

struct LrSchedule {
  enum Kind { Constant, Cosine, Linear };
  Kind kind = Cosine;
  float peak = 1e-3f;
  int64_t warmup = 0;
  int64_t total = 0;
  float min_ratio = 0.1f;

  float at(int64_t step) const;
};

}  // namespace sl
