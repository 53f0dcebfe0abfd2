// BPE training with incremental pair counts: after each merge only the words that contain the
// merged pair are re-counted, and the most frequent pair comes from a max-heap whose stale entries
// (counts that changed since they were pushed) are skipped when popped.
#include <algorithm>
#include <queue>
#include <unordered_map>

#include "data/tokenizer.h"
#include "engine/error.h"

namespace sl::data {

namespace {

uint64_t pair_key(int32_t a, int32_t b) { return (uint64_t)a << 32 | (uint32_t)b; }

struct Candidate {
  int64_t count;
  uint64_t key;
  // Highest count first; ties go to the smallest pair, so training is deterministic.
  bool operator<(const Candidate& o) const { return count < o.count || (count == o.count && key > o.key); }
};

}  // namespace

Tokenizer Tokenizer::train(std::string_view text, int vocab_size) {
  SL_CHECK(vocab_size >= 257, "BPE vocab_size must be at least 257 (256 bytes + BOS), got " +
                                  std::to_string(vocab_size));
  std::unordered_map<std::string_view, int64_t> freq;
  for (auto w : split_words(text)) freq[w]++;

  std::vector<std::vector<int32_t>> words;
  std::vector<int64_t> counts;
  for (auto& [w, c] : freq) {
    if (w.size() < 2) continue;
    words.emplace_back(w.begin(), w.end());
    for (auto& x : words.back()) x = (unsigned char)x;
    counts.push_back(c);
  }
  std::unordered_map<uint64_t, int64_t> pair_count;
  std::unordered_map<uint64_t, std::vector<int32_t>> where;  // words that contain (or once did) a pair
  for (size_t w = 0; w < words.size(); ++w)
    for (size_t i = 0; i + 1 < words[w].size(); ++i) {
      uint64_t k = pair_key(words[w][i], words[w][i + 1]);
      pair_count[k] += counts[w];
      where[k].push_back((int32_t)w);
    }
  std::priority_queue<Candidate> heap;
  for (auto& [k, c] : pair_count) heap.push({c, k});

  std::vector<std::pair<int32_t, int32_t>> merges;
  std::vector<int32_t> stamp(words.size(), -1);  // last merge that re-counted each word
  std::vector<uint64_t> touched;
  const size_t target = vocab_size - 257;
  while (merges.size() < target && !heap.empty()) {
    Candidate top = heap.top();
    heap.pop();
    auto it = pair_count.find(top.key);
    if (it == pair_count.end() || it->second != top.count) continue;  // stale
    int32_t a = (int32_t)(top.key >> 32), b = (int32_t)(uint32_t)top.key;
    int32_t id = 256 + (int32_t)merges.size();
    merges.push_back({a, b});
    std::vector<int32_t> affected = std::move(where[top.key]);
    where.erase(top.key);
    touched.clear();
    for (int32_t w : affected) {
      if (stamp[w] == id) continue;
      stamp[w] = id;
      auto& s = words[w];
      int64_t c = counts[w];
      for (size_t i = 0; i + 1 < s.size(); ++i) {
        uint64_t k = pair_key(s[i], s[i + 1]);
        pair_count[k] -= c;
        touched.push_back(k);
      }
      size_t out = 0;
      for (size_t i = 0; i < s.size(); ++i) {
        if (i + 1 < s.size() && s[i] == a && s[i + 1] == b) {
          s[out++] = id;
          ++i;
        } else {
          s[out++] = s[i];
        }
      }
      s.resize(out);
      for (size_t i = 0; i + 1 < s.size(); ++i) {
        uint64_t k = pair_key(s[i], s[i + 1]);
        pair_count[k] += c;
        touched.push_back(k);
        if (s[i] == id || s[i + 1] == id) where[k].push_back(w);
      }
    }
    std::sort(touched.begin(), touched.end());
    touched.erase(std::unique(touched.begin(), touched.end()), touched.end());
    for (uint64_t k : touched) {
      auto pc = pair_count.find(k);
      if (pc == pair_count.end()) continue;
      if (pc->second <= 0) pair_count.erase(pc);
      else heap.push({pc->second, k});
    }
  }
  return Tokenizer(std::move(merges));
}

}  // namespace sl::data
