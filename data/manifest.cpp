#include "data/manifest.h"

#include <sstream>

#include "data/files.h"
#include "engine/error.h"

namespace sl::data {

void write_manifest(const std::string& path, const Manifest& m) {
  std::ostringstream f;
  f << "format: sinklab-tokens 1\ntokenizer: " << m.tokenizer << "\nvocab_size: " << m.vocab_size
    << "\nbos: " << m.bos << "\ntoken_bytes: " << m.token_bytes << "\n";
  for (const auto& s : m.shards)
    f << "shard: " << s.split << ' ' << s.file << ' ' << s.tokens << ' ' << s.bytes << ' ' << std::hex
      << s.checksum << std::dec << "\n";
  for (const auto& [k, v] : m.stats) f << "stat." << k << ": " << v << "\n";
  write_file_atomic(path, f.str());
}

Manifest read_manifest(const std::string& path) {
  std::istringstream f(read_file(path));
  Manifest m;
  std::string line;
  int line_no = 0;
  bool has_format = false;
  auto fail = [&](const std::string& what) {
    throw Error("manifest " + path + " line " + std::to_string(line_no) + ": " + what);
  };
  auto number = [&](const std::string& v) -> long long {
    try {
      size_t used;
      long long x = std::stoll(v, &used);
      if (used == v.size()) return x;
    } catch (const std::exception&) {
    }
    fail("expected a number, got '" + v + "'");
    return 0;
  };
  while (std::getline(f, line)) {
    ++line_no;
    if (line.empty()) continue;
    size_t colon = line.find(": ");
    if (colon == std::string::npos) fail("expected 'key: value', got '" + line + "'");
    std::string key = line.substr(0, colon), value = line.substr(colon + 2);
    if (key == "format") {
      if (value != "sinklab-tokens 1") fail("unsupported format '" + value + "'");
      has_format = true;
    } else if (key == "tokenizer") {
      m.tokenizer = value;
    } else if (key == "vocab_size") {
      m.vocab_size = (int)number(value);
    } else if (key == "bos") {
      m.bos = (int32_t)number(value);
    } else if (key == "token_bytes") {
      m.token_bytes = (int)number(value);
      if (m.token_bytes != 2 && m.token_bytes != 4) fail("token_bytes must be 2 or 4");
    } else if (key == "shard") {
      std::istringstream ls(value);
      ShardInfo s;
      std::string hex;
      if (!(ls >> s.split >> s.file >> s.tokens >> s.bytes >> hex)) fail("expected 'shard: split file tokens bytes checksum'");
      if (s.split != "train" && s.split != "val") fail("unknown split '" + s.split + "'");
      size_t used = 0;
      try {
        s.checksum = std::stoull(hex, &used, 16);
      } catch (const std::exception&) {
      }
      if (used == 0 || used != hex.size()) fail("expected a hexadecimal checksum, got '" + hex + "'");
      m.shards.push_back(s);
    } else if (key.compare(0, 5, "stat.") == 0) {
      m.stats[key.substr(5)] = value;
    } else {
      fail("unknown key '" + key + "'");
    }
  }
  SL_CHECK(has_format, "manifest " + path + ": missing 'format: sinklab-tokens 1' (not a sinklab manifest?)");
  SL_CHECK(m.vocab_size > 0 && m.bos >= 0 && m.bos < m.vocab_size,
           "manifest " + path + ": bos " + std::to_string(m.bos) + " outside vocab_size " + std::to_string(m.vocab_size));
  return m;
}

}  // namespace sl::data
