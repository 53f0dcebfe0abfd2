#include "data/files.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "data/gzip.h"
#include "engine/autograd.h"

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
  std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    SL_CHECK(f, "cannot write " + tmp);
    f.write(bytes.data(), (std::streamsize)bytes.size());
    f.flush();
    SL_CHECK(f, "write failed for " + tmp + " (disk full?)");
  }
  std::filesystem::rename(tmp, path);
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
