#include "data/clean.h"

#include <unordered_set>

#include "data/files.h"

namespace sl::data {

std::string normalize_whitespace(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  int newlines = 0;       // pending newlines, emitted (at most 2) before the next visible character
  bool space = false;     // pending space within a line
  for (size_t i = 0; i < text.size(); ++i) {
    unsigned char c = text[i];
    if (c == '\r') {
      if (i + 1 < text.size() && text[i + 1] == '\n') continue;
      c = '\n';
    }
    if (c == '\n') {
      ++newlines;
      space = false;
    } else if (c == ' ' || c == '\t' || c == '\f' || c == '\v') {
      space = true;
    } else if (c < 0x20 || c == 0x7f) {
      continue;
    } else {
      if (!out.empty()) {
        if (newlines) out.append(newlines > 1 ? 2 : 1, '\n');
        else if (space) out.push_back(' ');
      }
      newlines = 0;
      space = false;
      out.push_back((char)c);
    }
  }
  return out;
}

bool is_text(const std::string& text) {
  size_t printable = 0, chars = 0;
  for (size_t i = 0; i < text.size();) {
    unsigned char c = text[i];
    int extra = c < 0x80 ? 0 : (c >> 5) == 6 ? 1 : (c >> 4) == 14 ? 2 : (c >> 3) == 30 ? 3 : -1;
    if (extra < 0 || c == 0 || i + extra >= text.size()) return false;
    for (int k = 1; k <= extra; ++k)
      if (((unsigned char)text[i + k] >> 6) != 2) return false;
    ++chars;
    if (extra > 0 || c >= 0x20 || c == '\n' || c == '\t') ++printable;
    i += extra + 1;
  }
  return chars > 0 && printable >= chars * 0.99;
}

std::vector<Document> clean_and_dedup(std::vector<Document> docs, size_t min_bytes) {
  std::vector<Document> kept;
  std::unordered_set<uint64_t> seen;
  for (auto& d : docs) {
    if (!is_text(d.text)) continue;
    d.text = normalize_whitespace(d.text);
    if (d.text.size() < min_bytes || !seen.insert(fnv1a64(d.text)).second) continue;
    kept.push_back(std::move(d));
  }
  return kept;
}

}  // namespace sl::data
