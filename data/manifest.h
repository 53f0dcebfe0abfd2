// manifest.txt of a prepared data set: plain "key: value" lines (no YAML library needed).
//   format: sinklab-tokens 1
//   tokenizer: tokenizer.txt
//   vocab_size: 4096
//   bos: 4095
//   token_bytes: 2
//   shard: <split> <file> <tokens> <bytes> <fnv1a64 hex>     (one line per shard, in order)
//   stat.<name>: <value>                                     (bytes per source, document counts, ...)
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace sl::data {

struct ShardInfo {
  std::string split;  // "train" or "val"
  std::string file;   // relative to the manifest's directory
  int64_t tokens = 0;
  int64_t bytes = 0;
  uint64_t checksum = 0;  // FNV-1a 64 of the file's bytes
};

struct Manifest {
  std::string tokenizer;
  int vocab_size = 0;
  int32_t bos = 0;
  int token_bytes = 2;  // 2: uint16 tokens (vocab < 65536), 4: uint32
  std::vector<ShardInfo> shards;
  std::map<std::string, std::string> stats;
};

void write_manifest(const std::string& path, const Manifest& m);
Manifest read_manifest(const std::string& path);

}  // namespace sl::data
