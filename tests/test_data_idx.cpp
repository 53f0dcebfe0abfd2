#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <unistd.h>

#include "data/idx.h"
#include "data/patches.h"
#include "engine/error.h"

using namespace sl::data;
namespace fs = std::filesystem;

namespace {

std::string be32(uint32_t v) { return {char(v >> 24), char(v >> 16), char(v >> 8), char(v)}; }

std::string write(const std::string& name, const std::string& bytes) {
  std::string p = (fs::temp_directory_path() / ("sl_idx_" + std::to_string(getpid()) + "_" + name)).string();
  std::ofstream(p, std::ios::binary | std::ios::trunc) << bytes;
  return p;
}

void require_error(const std::function<void()>& f, const std::string& a, const std::string& b) {
  try {
    f();
    FAIL("expected an error mentioning " << a << " and " << b);
  } catch (const sl::Error& e) {
    std::string msg = e.what();
    INFO(msg);
    CHECK(msg.find(a) != std::string::npos);
    CHECK(msg.find(b) != std::string::npos);
  }
}

}  // namespace

TEST_CASE("IDX reader: values, scaling, and clear errors on corrupt files", "[data][idx]") {
  // 3 images of 2x3 pixels, labels 7 0 9.
  std::string pixels;
  for (int i = 0; i < 18; ++i) pixels.push_back(char(i * 15));
  std::string images = be32(0x803) + be32(3) + be32(2) + be32(3) + pixels;
  std::string labels = be32(0x801) + be32(3) + std::string{7, 0, 9};
  std::string ip = write("img", images), lp = write("lab", labels);
  ImageSet s = read_idx(ip, lp);
  REQUIRE(s.count == 3);
  REQUIRE(s.rows == 2);
  REQUIRE(s.cols == 3);
  REQUIRE(s.labels == std::vector<int32_t>{7, 0, 9});
  REQUIRE(s.images.size() == 18);
  REQUIRE(s.images[0] == 0.0f);
  REQUIRE(s.images[17] == Approx(255.0f / 255.0f));
  REQUIRE(s.images[7] == Approx(105.0f / 255.0f));

  std::string bad_magic = write("bad_magic", be32(0x802) + images.substr(4));
  require_error([&] { read_idx(bad_magic, lp); }, "bad_magic", "magic");
  std::string truncated = write("trunc", images.substr(0, images.size() - 1));
  require_error([&] { read_idx(truncated, lp); }, "trunc", "truncated");
  std::string short_header = write("short", images.substr(0, 6));
  require_error([&] { read_idx(short_header, lp); }, "short", "header");
  std::string two_labels = write("two", be32(0x801) + be32(2) + std::string{1, 2});
  require_error([&] { read_idx(ip, two_labels); }, "3 images", "2 labels");
  for (auto p : {ip, lp, bad_magic, truncated, short_header, two_labels}) fs::remove(p);
}

TEST_CASE("synthetic images are deterministic, in [0,1], and class-dependent", "[data][idx]") {
  ImageSet a = synthetic_images(40, 28, 28, 10, 3), b = synthetic_images(40, 28, 28, 10, 3);
  REQUIRE(a.images == b.images);
  REQUIRE(a.labels == b.labels);
  for (float v : a.images) REQUIRE((v >= 0.f && v <= 1.f));
  // Mean images of two classes differ clearly (the shapes are in different places).
  std::vector<double> mean[2] = {std::vector<double>(784), std::vector<double>(784)};
  int n[2] = {0, 0};
  ImageSet c = synthetic_images(400, 28, 28, 2, 5);
  for (int64_t i = 0; i < c.count; ++i) {
    n[c.labels[i]]++;
    for (int p = 0; p < 784; ++p) mean[c.labels[i]][p] += c.images[i * 784 + p];
  }
  REQUIRE((n[0] > 100 && n[1] > 100));
  double diff = 0;
  for (int p = 0; p < 784; ++p) diff += std::abs(mean[0][p] / n[0] - mean[1][p] / n[1]);
  REQUIRE(diff > 20);
}

TEST_CASE("Fashion-MNIST loads with 60000/10000 items", "[data][idx][corpus]") {
  if (!fs::exists("/usr/share/datasets/fashion-mnist")) {
    WARN("dataset-fashion-mnist not installed; skipped");
    return;
  }
  ImageSet train = load_fashion_mnist("train"), test = load_fashion_mnist("test");
  REQUIRE(train.count == 60000);
  REQUIRE(test.count == 10000);
  REQUIRE((train.rows == 28 && train.cols == 28));
  REQUIRE(train.images.size() == 60000u * 784);
  REQUIRE(train.num_classes == 10);
  std::vector<int> per_class(10);
  for (int32_t l : train.labels) per_class.at(l)++;
  for (int c : per_class) REQUIRE(c == 6000);  // Fashion-MNIST is balanced
}

TEST_CASE("background patches: near-constant pixels, whatever their brightness", "[data][vit]") {
  // One 4 x 4 image in 2 x 2 patches: black; constant grey; a 0/1 checkerboard (std 0.5); a
  // faint ripple of +-0.01 (std 0.01, under the 0.02 threshold).
  ImageSet set;
  set.count = 2, set.rows = 4, set.cols = 4;
  set.images = {0, 0, 0.5f, 0.5f, 0, 0, 0.5f, 0.5f, 0, 1, 0.3f, 0.32f, 1, 0, 0.32f, 0.3f};
  set.images.resize(32, 1.f);  // a second, all-white image
  CHECK(background_patches(set, 0, 1, 2, 0.02f) == std::vector<uint8_t>{1, 1, 0, 1});
  CHECK(background_patches(set, 0, 1, 2, 0.005f) == std::vector<uint8_t>{1, 1, 0, 0});
  CHECK(background_patches(set, 0, 2, 2, 0.02f) == std::vector<uint8_t>{1, 1, 0, 1, 1, 1, 1, 1});
  CHECK_THROWS_WITH(background_patches(set, 0, 1, 3, 0.02f), Catch::Contains("does not divide"));
  CHECK_THROWS_WITH(background_patches(set, 1, 2, 2, 0.02f), Catch::Contains("has images 0 .. 1"));
}
