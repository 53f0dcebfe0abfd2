// The tokenizer file is readable text:
//   sinklab-bpe 1
//   vocab_size 4096
//   bos 4095
//   merges 3839
//   <a> <b> <bytes of the new token, escaped>     (one line per merge; merge i is token 256+i)
// Bytes outside printable ASCII, and '\', are written as \xHH.
#include <cstdio>
#include <sstream>

#include "data/files.h"
#include "data/tokenizer.h"
#include "engine/error.h"

namespace sl::data {

namespace {

std::string escape(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (c > 0x20 && c < 0x7f && c != '\\') {
      out.push_back((char)c);
    } else {
      char buf[5];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    }
  }
  return out;
}

}  // namespace

void Tokenizer::save(const std::string& path) const {
  std::ostringstream f;
  f << "sinklab-bpe 1\nvocab_size " << vocab_size() << "\nbos " << bos() << "\nmerges " << merges_.size() << "\n";
  for (size_t i = 0; i < merges_.size(); ++i)
    f << merges_[i].first << ' ' << merges_[i].second << ' ' << escape(bytes_[256 + i]) << '\n';
  write_file_atomic(path, f.str());
}

Tokenizer Tokenizer::load(const std::string& path) {
  std::istringstream f(read_file(path));
  std::string line;
  int line_no = 0;
  auto fail = [&](const std::string& what) {
    throw Error("tokenizer file " + path + " line " + std::to_string(line_no) + ": " + what);
  };
  auto header = [&](const std::string& key) -> long long {
    ++line_no;
    if (!std::getline(f, line)) fail("missing '" + key + "' (file truncated)");
    std::istringstream ls(line);
    std::string k;
    long long v;
    if (!(ls >> k >> v) || k != key) fail("expected '" + key + " <number>', got '" + line + "'");
    return v;
  };
  if (header("sinklab-bpe") != 1) fail("unsupported tokenizer format version");
  long long vocab = header("vocab_size"), bos = header("bos"), n = header("merges");
  if (n < 0 || vocab != 257 + n) fail("vocab_size " + std::to_string(vocab) + " != 257 + merges " + std::to_string(n));
  if (bos != 256 + n) fail("bos " + std::to_string(bos) + " != 256 + merges");
  std::vector<std::pair<int32_t, int32_t>> merges;
  std::vector<std::string> bytes(256);
  for (int b = 0; b < 256; ++b) bytes[b] = std::string(1, (char)b);
  for (long long i = 0; i < n; ++i) {
    ++line_no;
    if (!std::getline(f, line)) fail("missing merge " + std::to_string(i) + " of " + std::to_string(n) + " (file truncated)");
    std::istringstream ls(line);
    long long a, b;
    std::string esc;
    if (!(ls >> a >> b >> esc)) fail("expected '<id> <id> <bytes>', got '" + line + "'");
    if (a < 0 || b < 0 || a >= 256 + i || b >= 256 + i)
      fail("merge of unknown token (ids must be below " + std::to_string(256 + i) + ")");
    std::string joined = bytes[a] + bytes[b];
    if (escape(joined) != esc) fail("bytes '" + esc + "' do not match the merged tokens ('" + escape(joined) + "')");
    merges.push_back({(int32_t)a, (int32_t)b});
    bytes.push_back(joined);
  }
  ++line_no;
  if (std::getline(f, line) && !line.empty()) fail("unexpected content after the last merge");
  return Tokenizer(std::move(merges));
}

}  // namespace sl::data
