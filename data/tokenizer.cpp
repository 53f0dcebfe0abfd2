#include "data/tokenizer.h"

#include <climits>

#include "engine/error.h"

namespace sl::data {

CharClass char_class(unsigned char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80) return CharClass::Letter;
  if (c >= '0' && c <= '9') return CharClass::Digit;
  if (c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == '\f' || c == '\v') return CharClass::Space;
  return CharClass::Punct;
}

std::vector<std::string_view> split_words(std::string_view t) {
  std::vector<std::string_view> words;
  size_t n = t.size(), i = 0;
  auto word_at = [&](size_t j) { return j < n && char_class(t[j]) != CharClass::Space; };
  while (i < n) {
    size_t start = i;
    if (t[i] == ' ' && word_at(i + 1)) ++i;  // a leading space belongs to the word
    CharClass c = char_class(t[i]);
    size_t j = i + 1;
    while (j < n && char_class(t[j]) == c && j - start < kMaxWordBytes) ++j;
    if (c == CharClass::Space && j < n && word_at(j) && t[j - 1] == ' ' && j - 1 > start) --j;
    words.push_back(t.substr(start, j - start));
    i = j;
  }
  return words;
}

Tokenizer::Tokenizer() : Tokenizer(std::vector<std::pair<int32_t, int32_t>>{}) {}

Tokenizer::Tokenizer(std::vector<std::pair<int32_t, int32_t>> merges) : merges_(std::move(merges)) {
  bytes_.resize(256);
  for (int b = 0; b < 256; ++b) bytes_[b] = std::string(1, (char)b);
  for (size_t i = 0; i < merges_.size(); ++i) {
    auto [a, b] = merges_[i];
    bytes_.push_back(bytes_[a] + bytes_[b]);
    rank_[(uint64_t)a << 32 | (uint32_t)b] = (int32_t)i;
  }
  bytes_.emplace_back();  // BOS
}

const std::string& Tokenizer::token_bytes(int32_t id) const {
  SL_CHECK(id >= 0 && id < vocab_size(), "token id " + std::to_string(id) + " outside vocabulary of " +
                                             std::to_string(vocab_size()));
  return bytes_[id];
}

void Tokenizer::encode_word(std::string_view word, std::vector<int32_t>& out) const {
  if (merges_.empty() || word.size() == 1) {
    for (unsigned char c : word) out.push_back(c);
    return;
  }
  std::string key(word);
  auto hit = cache_.find(key);
  if (hit != cache_.end()) {
    out.insert(out.end(), hit->second.begin(), hit->second.end());
    return;
  }
  std::vector<int32_t> s(word.begin(), word.end());
  for (auto& x : s) x = (unsigned char)x;
  for (;;) {  // apply the earliest-learned merge present, everywhere in the word, until none applies
    int32_t best = INT32_MAX;
    for (size_t i = 0; i + 1 < s.size(); ++i) {
      auto r = rank_.find((uint64_t)s[i] << 32 | (uint32_t)s[i + 1]);
      if (r != rank_.end() && r->second < best) best = r->second;
    }
    if (best == INT32_MAX) break;
    auto [a, b] = merges_[best];
    size_t w = 0;
    for (size_t i = 0; i < s.size(); ++i) {
      if (i + 1 < s.size() && s[i] == a && s[i + 1] == b) {
        s[w++] = 256 + best;
        ++i;
      } else {
        s[w++] = s[i];
      }
    }
    s.resize(w);
  }
  if (cache_.size() > (1u << 20)) cache_.clear();  // bound the memory of long runs
  out.insert(out.end(), s.begin(), s.end());
  cache_.emplace(std::move(key), std::move(s));
}

void Tokenizer::encode_append(std::string_view text, std::vector<int32_t>& out) const {
  for (auto w : split_words(text)) encode_word(w, out);
}

std::vector<int32_t> Tokenizer::encode(std::string_view text) const {
  std::vector<int32_t> out;
  encode_append(text, out);
  return out;
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids) const {
  std::string s;
  for (int32_t id : ids) s += token_bytes(id);
  return s;
}

}  // namespace sl::data
