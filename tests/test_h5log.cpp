#include <catch2/catch.hpp>

#include <hdf5.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>

#include "engine/error.h"
#include "engine/checkpoint.h"
#include "engine/h5log.h"

using namespace sl;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;

namespace {

fs::path scratch_file(const std::string& name) {
  fs::path dir = fs::path(SINKLAB_BINARY_DIR) / "test_scratch" / "h5log";
  fs::create_directories(dir);
  fs::remove(dir / name);
  return dir / name;
}

// Opens a file read-only with the plain HDF5 C API. Within one process HDF5 shares an open
// file, and requires the same file-locking choice as the log's (off).
hid_t open_readonly(const fs::path& file) {
  hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
  H5Pset_file_locking(fapl, false, true);
  hid_t f = H5Fopen(file.c_str(), H5F_ACC_RDONLY, fapl);
  H5Pclose(fapl);
  REQUIRE(f >= 0);
  return f;
}

// Reads a dataset with the plain HDF5 C API, independently of the logger.
template <class T>
std::vector<T> read_dataset(const fs::path& file, const std::string& name, hid_t mem_type, Shape* shape) {
  hid_t f = open_readonly(file);
  hid_t d = H5Dopen2(f, name.c_str(), H5P_DEFAULT);
  REQUIRE(d >= 0);
  hid_t s = H5Dget_space(d);
  hsize_t dims[8];
  int rank = H5Sget_simple_extent_dims(s, dims, nullptr);
  shape->assign(dims, dims + rank);
  std::vector<T> v(shape_numel(*shape));
  if (!v.empty()) REQUIRE(H5Dread(d, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()) >= 0);
  H5Sclose(s);
  H5Dclose(d);
  H5Fclose(f);
  return v;
}

std::vector<float> floats(const fs::path& file, const std::string& name, Shape* shape) {
  return read_dataset<float>(file, name, H5T_NATIVE_FLOAT, shape);
}

std::vector<int64_t> steps(const fs::path& file, const std::string& name) {
  Shape shape;
  return read_dataset<int64_t>(file, name + "_step", H5T_NATIVE_INT64, &shape);
}

}  // namespace

TEST_CASE("H5Log appends rows that a reader sees after flush", "[h5log]") {
  fs::path path = scratch_file("append.h5");
  H5Log log(path.string());
  for (int s = 0; s < 3; ++s) log.append("loss", s, 4.0f - s);
  std::vector<float> alpha(15);
  for (int i = 0; i < 15; ++i) alpha[i] = 0.5f * i;
  log.append("attn/alpha", 0, alpha.data(), {3, 5});
  for (auto& a : alpha) a = -a;
  log.append("attn/alpha", 10, alpha.data(), {3, 5});
  log.set_attr("run", "tiny-sink");
  log.flush();

  Shape shape;
  REQUIRE(floats(path, "loss", &shape) == std::vector<float>{4, 3, 2});
  REQUIRE(shape == Shape{3});
  REQUIRE(steps(path, "loss") == std::vector<int64_t>{0, 1, 2});
  std::vector<float> rows = floats(path, "attn/alpha", &shape);
  REQUIRE(shape == Shape{2, 3, 5});
  REQUIRE(rows[7] == 3.5f);
  REQUIRE(rows[15 + 7] == -3.5f);
  REQUIRE(steps(path, "attn/alpha") == std::vector<int64_t>{0, 10});

  // Chunked along steps and gzip-compressed.
  hid_t f = open_readonly(path);
  hid_t d = H5Dopen2(f, "attn/alpha", H5P_DEFAULT);
  hid_t dcpl = H5Dget_create_plist(d);
  hsize_t chunk[3];
  REQUIRE(H5Pget_chunk(dcpl, 3, chunk) == 3);
  REQUIRE(chunk[1] == 3);
  REQUIRE(chunk[2] == 5);
  unsigned flags;
  size_t nelmts = 0;
  REQUIRE(H5Pget_filter_by_id2(dcpl, H5Z_FILTER_DEFLATE, &flags, &nelmts, nullptr, 0, nullptr, nullptr) >= 0);
  H5Pclose(dcpl);
  H5Dclose(d);
  H5Fclose(f);
}

TEST_CASE("H5Log refuses mismatched rows, steps that go back and reserved names", "[h5log]") {
  fs::path path = scratch_file("errors.h5");
  H5Log log(path.string());
  float row[6] = {1, 2, 3, 4, 5, 6};
  log.append("stats/norms", 5, row, {2, 3});
  REQUIRE_THROWS_WITH(log.append("stats/norms", 6, row, {3, 2}),
                      Contains("'stats/norms'") && Contains("rows of shape [2, 3]") && Contains("shape [3, 2]"));
  REQUIRE_THROWS_WITH(log.append("stats/norms", 5, row, {2, 3}), Contains("step 5 is not after its last step 5"));
  REQUIRE_THROWS_WITH(log.append("loss_step", 0, 1.f), Contains("reserved"));
  REQUIRE_THROWS_WITH(log.append("a//b", 0, 1.f), Contains("not a valid HDF5 path"));
  log.append("stats/norms", 6, row, {2, 3});  // the failures left the dataset usable
  log.flush();
  Shape shape;
  floats(path, "stats/norms", &shape);
  REQUIRE(shape == Shape{2, 2, 3});
}

TEST_CASE("H5Log reopens a file and appends after its rows (resume)", "[h5log]") {
  fs::path path = scratch_file("resume.h5");
  {
    H5Log log(path.string());
    for (int s = 0; s < 3; ++s) log.append("loss", 10 * s, (float)s);
    log.set_attr("config", "first");
  }
  {
    H5Log log(path.string());
    REQUIRE_THROWS_WITH(log.append("loss", 20, 9.f), Contains("not after its last step 20"));
    log.append("loss", 30, 3.f);
    log.append("lr", 30, 0.5f);
    log.set_attr("config", "second");
  }
  Shape shape;
  REQUIRE(floats(path, "loss", &shape) == std::vector<float>{0, 1, 2, 3});
  REQUIRE(steps(path, "loss") == std::vector<int64_t>{0, 10, 20, 30});
  REQUIRE(steps(path, "lr") == std::vector<int64_t>{30});
  hid_t f = open_readonly(path);
  hid_t a = H5Aopen(f, "config", H5P_DEFAULT);
  hid_t t = H5Aget_type(a);
  std::vector<char> text(H5Tget_size(t));
  REQUIRE(H5Aread(a, t, text.data()) >= 0);
  REQUIRE(std::string(text.begin(), text.end()) == "second");
  H5Tclose(t);
  H5Aclose(a);
  H5Fclose(f);
}

TEST_CASE("H5Log truncate_after drops rows beyond a step in every dataset", "[h5log]") {
  fs::path path = scratch_file("truncate.h5");
  {
    H5Log log(path.string());
    for (int s = 0; s < 10; ++s) log.append("loss", s, (float)s);
    for (int s : {0, 5, 9}) {
      float row[3] = {(float)s, 1, 2};
      log.append("deep/x/y", s, row, {3});
    }
  }
  H5Log log(path.string());  // as on resume: reopen, drop what followed the checkpoint, go on
  log.truncate_after(4);
  log.append("loss", 5, 50.f);
  log.append("deep/x/y", 6, std::vector<float>{6, 6, 6}.data(), {3});
  log.flush();
  Shape shape;
  REQUIRE(floats(path, "loss", &shape) == std::vector<float>{0, 1, 2, 3, 4, 50});
  REQUIRE(steps(path, "loss") == std::vector<int64_t>{0, 1, 2, 3, 4, 5});
  REQUIRE(floats(path, "deep/x/y", &shape) == std::vector<float>{0, 1, 2, 6, 6, 6});
  REQUIRE(shape == Shape{2, 3});
  REQUIRE(steps(path, "deep/x/y") == std::vector<int64_t>{0, 6});
  log.truncate_after(-1);
  log.flush();
  REQUIRE(steps(path, "loss").empty());
}

TEST_CASE("H5Log remove drops one dataset and its steps; it can be written again from any step", "[h5log]") {
  fs::path path = scratch_file("remove.h5");
  {
    H5Log log(path.string());
    for (int s = 0; s < 3; ++s) log.append("a/x", s, (float)s), log.append("a/y", s, 10.f * s);
  }
  H5Log log(path.string());
  log.remove("a/x");
  log.remove("never/written");  // nothing to remove
  log.append("a/x", 0, std::vector<float>{7, 8}.data(), {2});  // another shape, an earlier step
  log.flush();
  Shape shape;
  REQUIRE(floats(path, "a/x", &shape) == std::vector<float>{7, 8});
  REQUIRE(shape == Shape{1, 2});
  REQUIRE(steps(path, "a/x") == std::vector<int64_t>{0});
  REQUIRE(floats(path, "a/y", &shape) == std::vector<float>{0, 10, 20});
}

TEST_CASE("H5Log writes rows in blocks: a flush holds every row appended, truncate_after and remove see those not yet written", "[h5log]") {
  fs::path path = scratch_file("blocks.h5");
  H5Log log(path.string());
  auto row = [](int s) { return std::vector<float>{(float)s, -0.5f * s}; };
  for (int s = 0; s < 75; ++s) log.append("x", s, row(s).data(), {2});  // two full blocks and 11 rows more
  log.flush();
  Shape shape;
  std::vector<float> values = floats(path, "x", &shape);
  REQUIRE(shape == Shape{75, 2});
  std::vector<int64_t> logged = steps(path, "x");
  for (int s = 0; s < 75; ++s) {
    INFO("row " << s);
    CHECK(values[2 * s] == s);
    CHECK(values[2 * s + 1] == -0.5f * s);
    CHECK(logged[s] == s);
  }
  for (int s = 75; s < 78; ++s) log.append("x", s, row(s).data(), {2});  // waiting in memory
  log.truncate_after(76);
  log.append("x", 80, row(80).data(), {2});
  log.append("y", 0, 1.f);
  log.remove("y");  // with its row not yet written
  log.append("y", 0, 2.f);
  log.flush();
  REQUIRE(floats(path, "x", &shape).size() == 2 * 78);
  logged = steps(path, "x");
  REQUIRE(std::vector<int64_t>(logged.end() - 3, logged.end()) == std::vector<int64_t>{75, 76, 80});
  REQUIRE(floats(path, "y", &shape) == std::vector<float>{2});
}

// Run by tests/python/test_h5log_reader.py: writes files into $SINKLAB_PY_DIR, flushes the log,
// says "flushed" and waits (file still open) until the reader answers on stdin.
TEST_CASE("writer for the h5py reader test", "[.h5log-python]") {
  const char* dir = std::getenv("SINKLAB_PY_DIR");
  REQUIRE(dir);
  fs::path root(dir);
  Checkpoint c;
  std::vector<float> w(35);
  for (int i = 0; i < 35; ++i) w[i] = 0.25f * i - 3;
  c.tensors["param/blocks.0.attn.wq"] = Tensor::from({5, 7}, w);
  c.ints["step"] = {42};
  c.strings["config"] = "lr: 0.001\n";
  save_checkpoint((root / "ckpt.h5").string(), c);
  write_tensors_h5((root / "arrays.h5").string(), {{"x/y.z", Tensor::from({5, 7}, w)}});
  H5Log log((root / "log.h5").string());
  for (int s = 0; s < 5000; ++s) log.append("loss", s, 1.0f / (s + 1));
  for (int s = 0; s < 3; ++s) log.append("attn/alpha", 100 * s, w.data(), {5, 7});
  log.set_attr("run", "py");
  log.flush();
  std::cout << "flushed" << std::endl;
  std::string reply;
  std::getline(std::cin, reply);
  REQUIRE(reply == "read");
}
