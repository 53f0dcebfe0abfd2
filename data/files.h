// Small file helpers shared by the data stages: whole-file reads, atomic writes (tmp + rename,
// so an interrupted stage never leaves a half-written output that looks valid), command output.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace sl::data {

std::string read_file(const std::string& path);
// The file's bytes, gunzipped if the file is gzip-compressed.
std::string read_text_file(const std::string& path);
void write_file_atomic(const std::string& path, std::string_view bytes);
// Everything the shell command prints on stdout; throws if it cannot run or exits non-zero.
std::string command_output(const std::string& command);

// FNV-1a, 64-bit: the checksum of shards and the identity of documents for de-duplication.
inline uint64_t fnv1a64(const void* data, size_t n, uint64_t h = 0xcbf29ce484222325ULL) {
  const unsigned char* p = (const unsigned char*)data;
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 0x100000001b3ULL;
  return h;
}
inline uint64_t fnv1a64(std::string_view s) { return fnv1a64(s.data(), s.size()); }

}  // namespace sl::data
