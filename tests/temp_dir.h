// A fresh directory under the system's temporary directory, removed with its contents at scope
// exit; named by the test process and `name` so parallel test processes never share one.
#pragma once
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace sl::testing {

struct TempDir {
  std::filesystem::path path;
  explicit TempDir(const std::string& name)
      : path(std::filesystem::temp_directory_path() / ("sinklab_test_" + std::to_string(getpid()) + "_" + name)) {
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string str() const { return path.string(); }
  std::string operator/(const std::string& file) const { return (path / file).string(); }
  // Writes `bytes` to `file` (subdirectories made as needed) and returns its path.
  std::string write(const std::string& file, const std::string& bytes) const {
    std::filesystem::create_directories((path / file).parent_path());
    std::ofstream(path / file, std::ios::binary | std::ios::trunc) << bytes;
    return (path / file).string();
  }
};

}  // namespace sl::testing
