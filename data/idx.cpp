#include "data/idx.h"

#include <algorithm>
#include <filesystem>

#include "data/files.h"
#include "engine/error.h"
#include "engine/rng.h"

namespace sl::data {

namespace {

uint32_t be32(const std::string& b, size_t at) {
  return (uint32_t)(uint8_t)b[at] << 24 | (uint32_t)(uint8_t)b[at + 1] << 16 | (uint32_t)(uint8_t)b[at + 2] << 8 |
         (uint8_t)b[at + 3];
}

// The payload of an IDX file of unsigned bytes with `ndim` dimensions; fills dims.
std::string idx_payload(const std::string& path, int ndim, std::vector<int64_t>& dims) {
  std::string b = read_text_file(path);
  size_t header = 4 + 4 * ndim;
  SL_CHECK(b.size() >= header, path + ": too short for an IDX header (" + std::to_string(b.size()) + " bytes)");
  uint32_t magic = be32(b, 0), want = 0x800 | ndim;
  SL_CHECK(magic == want, path + ": bad IDX magic 0x" + [&] {
    char s[16];
    std::snprintf(s, sizeof s, "%08x", magic);
    return std::string(s);
  }() + ", expected unsigned bytes with " + std::to_string(ndim) + " dimensions (0x00000" +
                              std::to_string(800 + ndim) + ")");
  int64_t n = 1;
  dims.clear();
  for (int d = 0; d < ndim; ++d) {
    dims.push_back(be32(b, 4 + 4 * d));
    n *= dims.back();
  }
  SL_CHECK((int64_t)(b.size() - header) == n, path + ": has " + std::to_string(b.size() - header) +
                                                  " data bytes, the header's dimensions need " + std::to_string(n) +
                                                  " (truncated or corrupt)");
  return b.substr(header);
}

}  // namespace

ImageSet read_idx(const std::string& images_path, const std::string& labels_path) {
  std::vector<int64_t> idims, ldims;
  std::string pixels = idx_payload(images_path, 3, idims);
  std::string labels = idx_payload(labels_path, 1, ldims);
  SL_CHECK(idims[0] == ldims[0], images_path + " has " + std::to_string(idims[0]) + " images but " + labels_path +
                                     " has " + std::to_string(ldims[0]) + " labels");
  ImageSet s;
  s.count = idims[0], s.rows = idims[1], s.cols = idims[2];
  s.images.resize(pixels.size());
  for (size_t i = 0; i < pixels.size(); ++i) s.images[i] = (uint8_t)pixels[i] / 255.0f;
  s.labels.resize(labels.size());
  int32_t max_label = 0;
  for (size_t i = 0; i < labels.size(); ++i) max_label = std::max(max_label, s.labels[i] = (uint8_t)labels[i]);
  s.num_classes = std::max(10, max_label + 1);
  return s;
}

ImageSet load_fashion_mnist(const std::string& split, const std::string& dir) {
  SL_CHECK(split == "train" || split == "test", "Fashion-MNIST split must be train or test, got '" + split + "'");
  std::string prefix = split == "train" ? "train" : "t10k";
  auto find = [&](const std::string& stem) {
    for (const char* ext : {".gz", ""}) {
      std::string p = dir + "/" + prefix + "-" + stem + ext;
      if (std::filesystem::exists(p)) return p;
    }
    throw Error("Fashion-MNIST file " + dir + "/" + prefix + "-" + stem + "[.gz] not found (install dataset-fashion-mnist)");
  };
  return read_idx(find("images-idx3-ubyte"), find("labels-idx1-ubyte"));
}

ImageSet synthetic_images(int64_t count, int rows, int cols, int num_classes, uint64_t seed) {
  SL_CHECK(count > 0 && rows >= 8 && cols >= 8 && num_classes > 0, "synthetic_images: need count > 0, size >= 8x8");
  Rng rng(seed);
  ImageSet s;
  s.count = count, s.rows = rows, s.cols = cols, s.num_classes = num_classes;
  s.images.assign(count * rows * cols, 0.f);
  s.labels.resize(count);
  for (int64_t i = 0; i < count; ++i) {
    int c = (int)rng.uniform_int(num_classes);
    s.labels[i] = c;
    float* img = s.images.data() + i * rows * cols;
    // Shape kind by class: horizontal bar, vertical bar, square, cross; its position shifts with the class.
    int kind = c % 4, shift = (c / 4) * rows / 4;
    for (int y = 0; y < rows; ++y)
      for (int x = 0; x < cols; ++x) {
        int cy = y - rows / 4 - shift, cx = x - cols / 4 - shift;
        bool on = kind == 0   ? (cy >= 0 && cy < 3 && cx >= 0 && cx < cols / 2)
                  : kind == 1 ? (cx >= 0 && cx < 3 && cy >= 0 && cy < rows / 2)
                  : kind == 2 ? (cy >= 0 && cy < rows / 3 && cx >= 0 && cx < cols / 3)
                              : ((cy == rows / 6 || cx == cols / 6) && cy >= 0 && cx >= 0 && cy < rows / 3 && cx < cols / 3);
        float noise = 0.2f * (float)rng.uniform();
        img[y * cols + x] = std::min(1.0f, (on ? 0.8f : 0.0f) + noise);
      }
  }
  return s;
}

}  // namespace sl::data
