#include <catch2/catch.hpp>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>

#include "engine/error.h"
#include "engine/checkpoint.h"
#include "tests/gradcheck.h"

using namespace sl;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;

namespace {

// A fresh, empty directory under the build tree for one test.
fs::path scratch_dir(const std::string& name) {
  fs::path dir = fs::path(SINKLAB_BINARY_DIR) / "test_scratch" / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

bool same_bits(const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape()) return false;
  std::vector<float> x = a.to_vector(), y = b.to_vector();
  return std::memcmp(x.data(), y.data(), x.size() * sizeof(float)) == 0;
}

float from_bits(uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

Checkpoint sample_checkpoint() {
  Checkpoint c;
  c.tensors["param/blocks.0.attn.wq"] = testing::randn({3, 5, 7}, 11);
  c.tensors["param/blocks.0.attn.wq.bias"] = testing::randn({7}, 12);  // a sibling sharing a prefix
  c.tensors["optim/m"] = testing::randn({13}, 13);
  c.tensors["scalar"] = Tensor::scalar(-0.0f);
  c.tensors["empty"] = Tensor::zeros({0, 3});
  // NaN with a payload, infinities, a denormal, the largest float: stored bit for bit.
  c.tensors["special"] = Tensor::from({5}, {from_bits(0x7fc12345u), std::numeric_limits<float>::infinity(),
                                            -std::numeric_limits<float>::infinity(), from_bits(0x00000003u),
                                            std::numeric_limits<float>::max()});
  c.tensors["transposed"] = testing::randn({3, 5}, 14).transpose(0, 1);  // non-contiguous view
  c.ints["step"] = {12345};
  c.ints["rng/data"] = {std::numeric_limits<int64_t>::min(), -1, 0, std::numeric_limits<int64_t>::max()};
  c.ints["nothing"] = {};
  c.strings["config"] = "model:\n  d_model: 64  # α-entmax? no: softmax\n";
  c.strings["empty"] = "";
  return c;
}

void require_equal(const Checkpoint& a, const Checkpoint& b) {
  REQUIRE(a.tensors.size() == b.tensors.size());
  for (auto& [name, t] : a.tensors) {
    INFO(name);
    REQUIRE(b.tensors.count(name));
    REQUIRE(same_bits(t, b.tensors.at(name)));
  }
  REQUIRE(a.ints == b.ints);
  REQUIRE(a.strings == b.strings);
}

void flip_byte(const fs::path& file, std::streamoff at) {
  std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(at);
  char c = 0;
  f.get(c);
  f.seekp(at);
  f.put((char)(c ^ 0x5a));
}

}  // namespace

TEST_CASE("crc32 is the IEEE CRC-32 of zlib", "[checkpoint]") {
  REQUIRE(crc32("", 0) == 0u);
  REQUIRE(crc32("123456789", 9) == 0xCBF43926u);  // the standard check value
  REQUIRE(crc32("56789", 5, crc32("1234", 4)) == 0xCBF43926u);
}

TEST_CASE("checkpoint round-trips tensors, integers and strings bit for bit", "[checkpoint]") {
  fs::path dir = scratch_dir("ckpt_roundtrip");
  std::string path = (dir / "step.h5").string();
  Checkpoint saved = sample_checkpoint();
  save_checkpoint(path, saved);
  REQUIRE_FALSE(fs::exists(path + ".tmp"));
  Checkpoint loaded = load_checkpoint(path);
  require_equal(saved, loaded);
  REQUIRE(loaded.tensor("param/blocks.0.attn.wq", {3, 5, 7}).shape() == Shape{3, 5, 7});
  REQUIRE(loaded.integers("step") == std::vector<int64_t>{12345});
  REQUIRE(loaded.text("empty").empty());
  REQUIRE_THROWS_WITH(loaded.tensor("optim/m", {12}), Contains("has shape [13], expected [12]"));
  REQUIRE_THROWS_WITH(loaded.tensor("optim/v", {13}), Contains("no tensor 'optim/v'"));
  REQUIRE_THROWS_WITH(loaded.integers("data_pos"), Contains("'data_pos'"));
  // Saving again replaces the file.
  saved.ints["step"] = {12346};
  save_checkpoint(path, saved);
  REQUIRE(load_checkpoint(path).integers("step") == std::vector<int64_t>{12346});
}

TEST_CASE("a corrupted checkpoint is refused with a message naming the problem", "[checkpoint]") {
  fs::path dir = scratch_dir("ckpt_corrupt");
  std::string path = (dir / "c.h5").string();
  Checkpoint c;
  c.tensors["w"] = testing::randn({101, 99}, 3);  // ~40 KB: the middle of the file is tensor data
  c.ints["step"] = {7};
  save_checkpoint(path, c);
  auto size = (std::streamoff)fs::file_size(path);

  SECTION("a flipped byte in the data") {
    flip_byte(path, size / 2);
    REQUIRE_THROWS_WITH(load_checkpoint(path), Contains(path) && Contains("checksum mismatch in dataset tensors/w"));
  }
  SECTION("a truncated file") {
    fs::resize_file(path, size / 2);
    REQUIRE_THROWS_WITH(load_checkpoint(path), Contains(path) && Contains("not a readable HDF5 checkpoint"));
  }
  SECTION("a file that is not HDF5") {
    std::ofstream(path, std::ios::trunc) << "model: {d_model: 64}\n";
    REQUIRE_THROWS_WITH(load_checkpoint(path), Contains("not a readable HDF5 checkpoint"));
  }
  SECTION("an HDF5 file that is not a checkpoint") {
    write_tensors_h5(path, {{"w", Tensor::ones({3})}});
    REQUIRE_THROWS_WITH(load_checkpoint(path), Contains("not a sinklab checkpoint"));
  }
  SECTION("a missing file") {
    REQUIRE_THROWS_WITH(load_checkpoint((dir / "absent.h5").string()), Contains("absent.h5: file not found"));
  }
}

TEST_CASE("a flipped byte anywhere in a checkpoint never loads silently wrong", "[checkpoint]") {
  fs::path dir = scratch_dir("ckpt_sweep");
  std::string good = (dir / "good.h5").string(), bad = (dir / "bad.h5").string();
  Checkpoint c;
  c.tensors["param/w"] = testing::randn({5, 7}, 4);
  c.ints["step"] = {3, 1};
  c.strings["config"] = "lr: 0.001";
  save_checkpoint(good, c);
  auto size = (std::streamoff)fs::file_size(good);
  int refused = 0, unaffected = 0;
  for (std::streamoff at = 0; at < size; at += 2) {
    fs::copy_file(good, bad, fs::copy_options::overwrite_existing);
    flip_byte(bad, at);
    try {
      Checkpoint loaded = load_checkpoint(bad);
      INFO("byte " << at << " of " << size << " was flipped and the checkpoint still loaded");
      require_equal(c, loaded);  // only bytes HDF5 never reads (padding, free space) may flip
      ++unaffected;
    } catch (const Error&) {
      ++refused;
    }
  }
  REQUIRE(refused > unaffected);
}

TEST_CASE("a failed save leaves the previous checkpoint in place", "[checkpoint]") {
  fs::path dir = scratch_dir("ckpt_atomic");
  std::string path = (dir / "latest.h5").string();
  Checkpoint good = sample_checkpoint();
  save_checkpoint(path, good);

  SECTION("failure while writing (an invalid name) removes the temporary file") {
    Checkpoint bad = good;
    bad.tensors["param//w"] = Tensor::ones({3});
    REQUIRE_THROWS_WITH(save_checkpoint(path, bad), Contains(path) && Contains("'param//w'"));
    REQUIRE_FALSE(fs::exists(path + ".tmp"));
  }
  SECTION("the temporary file cannot be created") {
    fs::create_directories(path + ".tmp/occupied");  // even root cannot create a file there
    Checkpoint other;
    other.ints["step"] = {1};
    REQUIRE_THROWS_WITH(save_checkpoint(path, other), Contains("cannot create " + path + ".tmp"));
  }
  SECTION("the directory does not exist") {
    REQUIRE_THROWS_WITH(save_checkpoint((dir / "missing" / "x.h5").string(), good), Contains("missing/x.h5"));
  }
  require_equal(good, load_checkpoint(path));
}

TEST_CASE("write_tensors_h5 and read_tensors_h5 exchange plain float arrays", "[checkpoint]") {
  fs::path dir = scratch_dir("tensors_h5");
  std::string path = (dir / "arrays.h5").string();
  std::map<std::string, Tensor> saved{{"x", testing::randn({3, 5, 7}, 5)},
                                      {"grads/blocks.1.mlp.w1", testing::randn({9, 11}, 6)},
                                      {"s", Tensor::scalar(2.5f)}};
  write_tensors_h5(path, saved);
  auto loaded = read_tensors_h5(path);
  REQUIRE(loaded.size() == 3);
  for (auto& [name, t] : saved) REQUIRE(same_bits(t, loaded.at(name)));
}
