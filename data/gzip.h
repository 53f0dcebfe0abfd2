// Decoding of gzip files (RFC 1951/1952), our own inflate: the corpus files (man pages, GCIDE,
// Fashion-MNIST) are gzip-compressed and the build links no zlib.
#pragma once
#include <string>

namespace sl::data {

bool is_gzip(const std::string& bytes);

// The decompressed content of all gzip members in `bytes`; `what` names the file in errors.
std::string gunzip(const std::string& bytes, const std::string& what);

}  // namespace sl::data
