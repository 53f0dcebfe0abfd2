#include "data/backcopy.h"

#include <algorithm>
#include <array>
#include <numeric>

#include "engine/error.h"

namespace sl::data {

BackcopySource::BackcopySource(const std::string& text, const BatchShape& shape, int n_triggers, int max_vocab)
    : TokenSource(shape), n_triggers_(n_triggers) {
  std::array<int64_t, 256> freq{};
  for (unsigned char c : text) freq[c]++;
  std::vector<int> order(256);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return freq[a] > freq[b]; });
  std::array<int32_t, 256> id;
  id.fill(-1);
  for (int c : order) {
    if (freq[c] == 0 || (int)chars_.size() == max_vocab) break;
    id[c] = (int32_t)chars_.size();
    chars_.push_back((char)c);
  }
  const int v = (int)chars_.size();
  SL_CHECK(v >= 2 && n_triggers >= 1 && n_triggers < v,
           "backcopy needs more distinct characters (" + std::to_string(v) + ") than triggers (" +
               std::to_string(n_triggers) + ")");
  std::vector<std::vector<int64_t>> counts(v, std::vector<int64_t>(v, 0));
  unigram_cum_.assign(v, 0);
  for (size_t i = 0; i < text.size(); ++i) {
    int32_t b = id[(unsigned char)text[i]];
    if (b < 0) continue;
    unigram_cum_[b]++;
    int32_t a = i > 0 ? id[(unsigned char)text[i - 1]] : -1;
    if (a >= 0) counts[a][b]++;
  }
  std::partial_sum(unigram_cum_.begin(), unigram_cum_.end(), unigram_cum_.begin());
  bigram_cum_.resize(v);
  for (int a = 0; a < v; ++a) {
    std::partial_sum(counts[a].begin(), counts[a].end(), counts[a].begin());
    if (counts[a].back() > 0) bigram_cum_[a] = std::move(counts[a]);
  }
}

int32_t BackcopySource::draw(const std::vector<int64_t>& cum) {
  int64_t r = (int64_t)rng_.uniform_int(cum.back());
  return (int32_t)(std::upper_bound(cum.begin(), cum.end(), r) - cum.begin());
}

void BackcopySource::begin_batch() { roles_.assign((size_t)shape_.batch * (shape_.seq_len + 1), kNormal); }

void BackcopySource::fill_row(int32_t* row, int index_in_batch) {
  uint8_t* role = roles_.data() + (size_t)index_in_batch * (shape_.seq_len + 1);
  row[0] = bos();
  row[1] = draw(unigram_cum_);
  for (int j = 2; j <= shape_.seq_len; ++j) {
    int32_t prev = row[j - 1];
    if (is_trigger(prev) && j >= 3) {  // the token before the trigger is a real token, not BOS
      row[j] = row[j - 2];
      role[j] = kCopy;
    } else {
      const auto& cum = bigram_cum_[prev];
      row[j] = draw(cum.empty() ? unigram_cum_ : cum);
    }
  }
  for (int j = 1; j <= shape_.seq_len; ++j)
    if (is_trigger(row[j])) role[j] |= kTrigger;
}

}  // namespace sl::data
