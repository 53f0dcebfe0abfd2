#include "engine/schedule.h"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <string>

#include "engine/error.h"

namespace sl {

float LrSchedule::at(int64_t step) const {
  SL_CHECK(step >= 0 && warmup >= 0 && min_ratio >= 0 && min_ratio <= 1,
           "LrSchedule::at(" + std::to_string(step) + "): expected step >= 0, warmup >= 0 (got " +
               std::to_string(warmup) + ") and min_ratio in [0, 1] (got " + std::to_string(min_ratio) + ")");
  if (step < warmup) return (float)((double)peak * (step + 1) / warmup);
  if (kind == Constant) return peak;
  const double low = (double)peak * min_ratio;
  const double q = step >= total ? 1.0 : (double)(step - warmup) / (double)(total - warmup);
  if (kind == Cosine) return (float)(low + (peak - low) * 0.5 * (1 + std::cos(std::numbers::pi * q)));
  return (float)(peak - (peak - low) * q);
}

}  // namespace sl
