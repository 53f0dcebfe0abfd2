// Reading prepared token shards: a TokenSplit is the virtual concatenation of a split's shards
// (memory-mapped, never copied), with the positions of its BOS tokens (document starts).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "data/manifest.h"

namespace sl::data {

class TokenSplit {
 public:
  TokenSplit() = default;
  // An in-memory split (tests, synthetic data): takes the tokens.
  static TokenSplit from_tokens(std::vector<int32_t> tokens, int32_t bos);

  int64_t size() const { return size_; }
  int32_t bos() const { return bos_; }
  int32_t operator[](int64_t i) const;
  void copy(int64_t start, int64_t n, int32_t* out) const;  // tokens [start, start+n)
  const std::vector<int64_t>& doc_starts() const { return doc_starts_; }
  // The first n tokens only (the data-amount limit of experiments).
  TokenSplit prefix(int64_t n) const;

 private:
  friend class TokenStream;
  struct Chunk {
    const void* data;
    int64_t begin, n;
    int width;  // bytes per token
  };
  void add_chunk(std::shared_ptr<const void> owner, const void* data, int64_t n, int width);
  void find_doc_starts();

  std::vector<Chunk> chunks_;
  std::vector<std::shared_ptr<const void>> owners_;  // keep the mappings alive
  std::vector<int64_t> doc_starts_;
  int64_t size_ = 0;
  int32_t bos_ = 0;
};

// Writes tokens as a raw little-endian shard (uint16 or uint32) atomically; returns its entry.
ShardInfo write_shard(const std::string& dir, const std::string& file, const std::string& split,
                      const std::vector<int32_t>& tokens, int token_bytes);

class TokenStream {
 public:
  // Opens dir/manifest.txt and maps its shards. Sizes are always checked; with verify, checksums
  // and token ranges too. Any problem: sl::Error naming the file.
  static TokenStream open(const std::string& dir, bool verify = true);
  const Manifest& manifest() const { return manifest_; }
  const TokenSplit& train() const { return train_; }
  const TokenSplit& val() const { return val_; }

 private:
  Manifest manifest_;
  TokenSplit train_, val_;
};

}  // namespace sl::data
