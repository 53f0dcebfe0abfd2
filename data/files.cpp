#include <fcntl.h>
#include <unistd.h>

#include "data/files.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "data/gzip.h"
#include "engine/error.h"

namespace sl::data {

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  SL_CHECK(f, "cannot open " + path);
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::string read_text_file(const std::string& path) {
  std::string bytes = read_file(path);
  return is_gzip(bytes) ? gunzip(bytes, path) : bytes;
}

void write_file_atomic(const std::string& path, std::string_view bytes) {
  // fsync before rename: after a crash the path holds the old or the new bytes, never a stub.
  std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  SL_CHECK(fd >= 0, "cannot write " + tmp);
  ssize_t n = ::write(fd, bytes.data(), bytes.size());
  bool ok = n == (ssize_t)bytes.size() && ::fsync(fd) == 0;
  ::close(fd);
  if (!ok) {
    ::unlink(tmp.c_str());
    throw Error("writing " + path + " failed (disk full?); the previous version is untouched");
  }
  SL_CHECK(::rename(tmp.c_str(), path.c_str()) == 0, "cannot rename " + tmp + " to " + path);
}

std::string command_output(const std::string& command) {
  FILE* p = popen(command.c_str(), "r");
  SL_CHECK(p, "cannot run: " + command);
  std::string out;
  char buf[1 << 16];
  size_t k;
  while ((k = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, k);
  int rc = pclose(p);
  SL_CHECK(rc == 0, "command failed (status " + std::to_string(rc) + "): " + command);
  return out;
}

}  // namespace sl::data
