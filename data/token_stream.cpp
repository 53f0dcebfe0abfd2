#include "data/token_stream.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "data/files.h"
#include "engine/error.h"

namespace sl::data {

namespace {

struct MappedFile {
  void* p = nullptr;
  size_t n = 0;
  ~MappedFile() {
    if (p) munmap(p, n);
  }
};

std::shared_ptr<MappedFile> map_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  SL_CHECK(fd >= 0, "cannot open shard " + path + ": " + std::strerror(errno));
  struct stat st;
  fstat(fd, &st);
  auto m = std::make_shared<MappedFile>();
  m->n = (size_t)st.st_size;
  if (m->n > 0) {
    m->p = mmap(nullptr, m->n, PROT_READ, MAP_PRIVATE, fd, 0);
    if (m->p == MAP_FAILED) m->p = nullptr;
  }
  ::close(fd);
  SL_CHECK(m->n == 0 || m->p, "cannot map shard " + path);
  return m;
}

inline int32_t token_at(const void* data, int width, int64_t i) {
  if (width == 2) return ((const uint16_t*)data)[i];
  return (int32_t)((const uint32_t*)data)[i];
}

}  // namespace

TokenSplit TokenSplit::from_tokens(std::vector<int32_t> tokens, int32_t bos) {
  TokenSplit s;
  s.bos_ = bos;
  auto owned = std::make_shared<std::vector<int32_t>>(std::move(tokens));
  s.add_chunk(owned, owned->data(), (int64_t)owned->size(), 4);
  s.find_doc_starts();
  return s;
}

void TokenSplit::add_chunk(std::shared_ptr<const void> owner, const void* data, int64_t n, int width) {
  owners_.push_back(std::move(owner));
  if (n == 0) return;
  chunks_.push_back({data, size_, n, width});
  size_ += n;
}

void TokenSplit::find_doc_starts() {
  doc_starts_.clear();
  for (const auto& c : chunks_)
    for (int64_t i = 0; i < c.n; ++i)
      if (token_at(c.data, c.width, i) == bos_) doc_starts_.push_back(c.begin + i);
}

int32_t TokenSplit::operator[](int64_t i) const {
  SL_CHECK(i >= 0 && i < size_, "token index " + std::to_string(i) + " outside split of " + std::to_string(size_));
  auto it = std::upper_bound(chunks_.begin(), chunks_.end(), i, [](int64_t x, const Chunk& c) { return x < c.begin; });
  const Chunk& c = *(it - 1);
  return token_at(c.data, c.width, i - c.begin);
}

void TokenSplit::copy(int64_t start, int64_t n, int32_t* out) const {
  SL_CHECK(start >= 0 && n >= 0 && start + n <= size_, "token range [" + std::to_string(start) + ", " +
                                                           std::to_string(start + n) + ") outside split of " +
                                                           std::to_string(size_));
  auto it = std::upper_bound(chunks_.begin(), chunks_.end(), start, [](int64_t x, const Chunk& c) { return x < c.begin; }) - 1;
  for (int64_t pos = start; n > 0; ++it) {
    int64_t off = pos - it->begin, k = std::min(n, it->n - off);
    for (int64_t j = 0; j < k; ++j) *out++ = token_at(it->data, it->width, off + j);
    pos += k;
    n -= k;
  }
}

TokenSplit TokenSplit::prefix(int64_t n) const {
  SL_CHECK(n >= 0 && n <= size_, "token limit " + std::to_string(n) + " exceeds the split's " + std::to_string(size_));
  TokenSplit s = *this;
  s.chunks_.clear();
  s.size_ = 0;
  for (const auto& c : chunks_) {
    if (c.begin >= n) break;
    s.chunks_.push_back({c.data, c.begin, std::min(c.n, n - c.begin), c.width});
    s.size_ += s.chunks_.back().n;
  }
  s.doc_starts_.erase(std::lower_bound(s.doc_starts_.begin(), s.doc_starts_.end(), n), s.doc_starts_.end());
  return s;
}

ShardInfo write_shard(const std::string& dir, const std::string& file, const std::string& split,
                      const std::vector<int32_t>& tokens, int token_bytes) {
  SL_CHECK(token_bytes == 2 || token_bytes == 4, "token_bytes must be 2 or 4");
  std::string bytes(tokens.size() * token_bytes, '\0');
  for (size_t i = 0; i < tokens.size(); ++i) {
    uint32_t t = (uint32_t)tokens[i];
    SL_CHECK(token_bytes == 4 || t < 65536, "token " + std::to_string(t) + " does not fit a uint16 shard");
    for (int b = 0; b < token_bytes; ++b) bytes[i * token_bytes + b] = (char)(t >> (8 * b));  // little-endian
  }
  write_file_atomic(dir + "/" + file, bytes);
  return {split, file, (int64_t)tokens.size(), (int64_t)bytes.size(), fnv1a64(bytes)};
}

TokenStream TokenStream::open(const std::string& dir, bool verify) {
  TokenStream ts;
  ts.manifest_ = read_manifest(dir + "/manifest.txt");
  const Manifest& m = ts.manifest_;
  ts.train_.bos_ = ts.val_.bos_ = m.bos;
  for (const auto& s : m.shards) {
    std::string path = dir + "/" + s.file;
    auto mapped = map_file(path);
    SL_CHECK((int64_t)mapped->n == s.bytes && s.bytes == s.tokens * m.token_bytes,
             "shard " + path + " is " + std::to_string(mapped->n) + " bytes, manifest expects " +
                 std::to_string(s.bytes) + " (" + std::to_string(s.tokens) + " tokens of " +
                 std::to_string(m.token_bytes) + " bytes): truncated or mismatched");
    if (verify) {
      SL_CHECK(fnv1a64(mapped->p, mapped->n) == s.checksum, "shard " + path + ": checksum mismatch (corrupt file)");
      for (int64_t i = 0; i < s.tokens; ++i)
        SL_CHECK(token_at(mapped->p, m.token_bytes, i) < m.vocab_size,
                 "shard " + path + ": token at " + std::to_string(i) + " outside vocab_size " + std::to_string(m.vocab_size));
    }
    TokenSplit& split = s.split == "train" ? ts.train_ : ts.val_;
    const void* data = mapped->p;
    split.add_chunk(std::move(mapped), data, s.tokens, m.token_bytes);
  }
  ts.train_.find_doc_starts();
  ts.val_.find_doc_starts();
  return ts;
}

}  // namespace sl::data
