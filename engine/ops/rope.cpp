// Rotary position embedding (Su et al.): each pair (x[2i], x[2i+1]) of a head is rotated by
// an angle proportional to the position, so q.k depends on relative position only.
#include <cmath>
#include <map>
#include <memory>
#include <mutex>
#include <tuple>

#include "engine/ops.h"
#include "engine/ops/raw.h"
#include "engine/threads.h"

namespace sl {

// out (+)= R(sign * angle) applied to every pair of in[B, T, H, Dh]; cos_sin holds
// (cos, sin) for each (t, i). The backward pass is the inverse rotation, sign = -1.
static void rotate(const float* in, float* out, const Shape& s, const std::vector<float>& cos_sin, float sign,
                   bool accumulate, uint16_t* out16) {
  int64_t bt = s[0] * s[1], t_len = s[1], h = s[2], half = s[3] / 2;
#pragma omp parallel for if (bt * h * half > kParallelMin)
  for (int64_t r = 0; r < bt; ++r) {
    const float* cs = cos_sin.data() + (r % t_len) * half * 2;
    for (int64_t hh = 0; hh < h; ++hh) {
      const float* x = in + (r * h + hh) * half * 2;
      float* y = out + (r * h + hh) * half * 2;
      for (int64_t i = 0; i < half; ++i) {
        float c = cs[2 * i], sn = sign * cs[2 * i + 1];
        float y0 = x[2 * i] * c - x[2 * i + 1] * sn;
        float y1 = x[2 * i] * sn + x[2 * i + 1] * c;
        if (accumulate) {
          y[2 * i] += y0;
          y[2 * i + 1] += y1;
        } else {
          y[2 * i] = y0;
          y[2 * i + 1] = y1;
        }
      }
    }
    if (out16) round_to_bf16(out + r * h * half * 2, out16 + r * h * half * 2, h * half * 2);
  }
}

// (cos, sin) of every (position, pair), made once per (length, pairs, theta, start): every layer
// and step shares a few tables, and their transcendentals would otherwise cost a tenth of a
// 16-thread step.
static std::shared_ptr<const std::vector<float>> angle_table(int64_t t_len, int64_t half, float theta, int64_t pos0) {
  static std::mutex mutex;
  static std::map<std::tuple<int64_t, int64_t, float, int64_t>, std::shared_ptr<const std::vector<float>>> tables;
  std::lock_guard<std::mutex> lock(mutex);
  auto& table = tables[{t_len, half, theta, pos0}];
  if (table) return table;
  auto cos_sin = std::make_shared<std::vector<float>>(t_len * half * 2);
  for (int64_t t = 0; t < t_len; ++t)
    for (int64_t i = 0; i < half; ++i) {
      double angle = double(pos0 + t) * std::pow((double)theta, -2.0 * i / (2.0 * half));
      (*cos_sin)[(t * half + i) * 2] = (float)std::cos(angle);
      (*cos_sin)[(t * half + i) * 2 + 1] = (float)std::sin(angle);
    }
  return table = cos_sin;
}

Tensor rope(const Tensor& x_in, float theta, int64_t pos0) {
  SL_CHECK(x_in.dim() == 4, "rope: x must be [B, T, H, Dh], got " + shape_str(x_in.shape()));
  SL_CHECK(x_in.size(3) % 2 == 0, "rope: head dim Dh must be even (pairs are rotated), got " + shape_str(x_in.shape()));
  Tensor x = x_in.contiguous();
  auto cos_sin = angle_table(x.size(1), x.size(3) / 2, theta, pos0);
  Tensor out = Tensor::empty(x.shape());
  // Both ways the rotated values keep their bf16 rounding for the products that read them.
  rotate(x.data(), out.data(), x.shape(), *cos_sin, 1.f, false, bf16_values(bf16_image_kept_to_fill(out, recording({x}))));
  return record(out, "rope", {x}, [x, cos_sin](const Tensor&, const Tensor& g) {
    auto [gx, first] = grad_slot(x);
    rotate(g.data(), gx.data(), x.shape(), *cos_sin, -1.f, !first, bf16_values(bf16_image_kept_to_fill(gx, first)));
  });
}

}  // namespace sl
