#include "data/patches.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "engine/error.h"

namespace sl::data {

std::vector<uint8_t> background_patches(const ImageSet& set, int64_t first, int64_t count, int64_t patch, float max_std) {
  SL_CHECK(patch > 0 && set.rows % patch == 0 && set.cols % patch == 0,
           "background_patches: patch " + std::to_string(patch) + " does not divide the " + std::to_string(set.rows) +
               " x " + std::to_string(set.cols) + " images");
  SL_CHECK(first >= 0 && count >= 0 && first + count <= set.count,
           "background_patches: images " + std::to_string(first) + " .. " + std::to_string(first + count - 1) +
               " asked for, but the set has images 0 .. " + std::to_string(set.count - 1));
  const int64_t gr = set.rows / patch, gc = set.cols / patch;
  std::vector<uint8_t> out;
  out.reserve((size_t)(count * gr * gc));
  for (int64_t i = first; i < first + count; ++i) {
    const float* img = set.images.data() + i * set.rows * set.cols;
    for (int64_t pr = 0; pr < gr; ++pr)
      for (int64_t pc = 0; pc < gc; ++pc) {
        double s = 0, s2 = 0;
        for (int64_t y = pr * patch; y < (pr + 1) * patch; ++y)
          for (int64_t x = pc * patch; x < (pc + 1) * patch; ++x) {
            const double v = img[y * set.cols + x];
            s += v, s2 += v * v;
          }
        const double n = (double)(patch * patch), var = std::max(s2 / n - (s / n) * (s / n), 0.0);
        out.push_back(std::sqrt(var) <= max_std);
      }
  }
  return out;
}

}  // namespace sl::data
