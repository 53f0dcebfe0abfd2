// Which patches of an image are background: near-constant pixels, as the empty surround of a
// Fashion-MNIST garment. The ViT statistics ask whether sink and high-norm patches are these.
#pragma once
#include <cstdint>
#include <vector>

#include "data/idx.h"

namespace sl::data {

// [count, P] for images first .. first + count - 1 of `set`, patches of patch x patch pixels in
// row-major order (P = (rows / patch) * (cols / patch)): 1 where the standard deviation of the
// patch's pixels (in [0, 1] units) is at most max_std.
std::vector<uint8_t> background_patches(const ImageSet& set, int64_t first, int64_t count, int64_t patch, float max_std);

}  // namespace sl::data
