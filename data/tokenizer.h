// Byte-level BPE tokenizer (our own). Ids 0..255 are the bytes; id 256+i is merge i; the special
// token BOS is the last id, 256 + number_of_merges (so vocab_size = 257 + merges). With no merges
// this is the plain byte-level tokenizer (vocab 257, BOS 256).
//
// Text is first split into words (see split_words) and merges never cross a word boundary, so
// decode(encode(s)) == s for any byte string.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace sl::data {

// The classes of bytes that words are runs of. Bytes >= 0x80 count as letters, so UTF-8 words
// stay whole; whitespace is ' ', '\t', '\n', '\v', '\f', '\r'; every other byte is punctuation.
enum class CharClass { Letter, Digit, Punct, Space };
CharClass char_class(unsigned char c);
// Longer runs are cut into pieces of this many bytes (the leading space included): encoding a
// word is quadratic in its length.
constexpr size_t kMaxWordBytes = 64;

// Runs of letters, of digits, of punctuation, each optionally preceded by one space; remaining
// whitespace runs on their own (a run followed by a word leaves its last space to that word).
std::vector<std::string_view> split_words(std::string_view text);

class Tokenizer {
 public:
  Tokenizer();  // byte-level
  static Tokenizer byte_level() { return Tokenizer(); }
  // Learns vocab_size - 257 merges from `text` (vocab_size >= 257).
  static Tokenizer train(std::string_view text, int vocab_size);
  static Tokenizer load(const std::string& path);
  void save(const std::string& path) const;

  int vocab_size() const { return 257 + (int)merges_.size(); }
  int32_t bos() const { return 256 + (int32_t)merges_.size(); }
  const std::vector<std::pair<int32_t, int32_t>>& merges() const { return merges_; }
  const std::string& token_bytes(int32_t id) const;  // BOS has no bytes

  // Not thread-safe: words already seen are served from a cache.
  std::vector<int32_t> encode(std::string_view text) const;
  void encode_append(std::string_view text, std::vector<int32_t>& out) const;
  std::string decode(const std::vector<int32_t>& ids) const;

 private:
  explicit Tokenizer(std::vector<std::pair<int32_t, int32_t>> merges);
  void encode_word(std::string_view word, std::vector<int32_t>& out) const;

  std::vector<std::pair<int32_t, int32_t>> merges_;
  std::vector<std::string> bytes_;               // per id (BOS: empty)
  std::unordered_map<uint64_t, int32_t> rank_;   // pair key -> merge index
  mutable std::unordered_map<std::string, std::vector<int32_t>> cache_;
};

}  // namespace sl::data
