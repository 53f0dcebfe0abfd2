// IDX files (the MNIST format; Fashion-MNIST from Debian's dataset-fashion-mnist), gzip or raw,
// and a synthetic image set with the same layout for tests.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace sl::data {

struct ImageSet {
  int64_t count = 0, rows = 0, cols = 0;
  std::vector<float> images;    // [count, rows, cols], scaled to [0, 1]
  std::vector<int32_t> labels;  // [count]
  int num_classes = 10;
};

// Reads an images file (magic 0x00000803, uint8 [n, rows, cols]) and its labels file (magic
// 0x00000801, uint8 [n]); checks magic, dimensions, sizes and that the counts agree.
ImageSet read_idx(const std::string& images_path, const std::string& labels_path);

// Fashion-MNIST from `dir` (default: the Debian package's location): split "train" (60000) or
// "test" (10000). Files may be gzipped (*.gz) or not.
ImageSet load_fashion_mnist(const std::string& split, const std::string& dir = "/usr/share/datasets/fashion-mnist");

// `count` images of rows x cols: class c is a bright shape (bar, square, cross, ...) whose
// position depends on the class, plus uniform noise. Deterministic in seed.
ImageSet synthetic_images(int64_t count, int rows = 28, int cols = 28, int num_classes = 10, uint64_t seed = 0);

}  // namespace sl::data
