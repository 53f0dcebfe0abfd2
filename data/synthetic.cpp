#include "data/synthetic.h"

#include <algorithm>

#include "engine/error.h"

namespace sl::data {

UniformSource::UniformSource(int n_symbols, const BatchShape& shape) : TokenSource(shape), n_(n_symbols) {
  SL_CHECK(n_symbols > 0, "uniform source needs at least one symbol");
}

void UniformSource::fill_row(int32_t* row, int) {
  row[0] = n_;
  for (int j = 1; j <= shape_.seq_len; ++j) row[j] = (int32_t)rng_.uniform_int(n_);
}

RepeatSource::RepeatSource(int n_symbols, int period, const BatchShape& shape)
    : TokenSource(shape), n_(n_symbols), period_(period) {
  SL_CHECK(n_symbols > 0 && period > 0, "repeat source needs symbols and a positive period, got " +
                                            std::to_string(n_symbols) + " symbols, period " + std::to_string(period));
}

void RepeatSource::fill_row(int32_t* row, int) {
  std::vector<int32_t> pattern(period_);
  for (auto& t : pattern) t = (int32_t)rng_.uniform_int(n_);
  row[0] = n_;
  for (int j = 1; j <= shape_.seq_len; ++j) row[j] = pattern[(j - 1) % period_];
}

namespace {

// Identity of a context (its length and tokens); a 64-bit mix, collisions are negligible.
uint64_t context_key(const int32_t* tokens, int len) {
  uint64_t h = 0x9e3779b97f4a7c15ULL * (uint64_t)(len + 1);
  for (int i = 0; i < len; ++i) {
    h ^= (uint64_t)(uint32_t)tokens[i] + 0x632be59bd9b4e019ULL + (h << 6) + (h >> 2);
    h *= 0xbf58476d1ce4e5b9ULL;
  }
  return h;
}

}  // namespace

MarkovSource::MarkovSource(const TokenSplit& data, int vocab_size, int order, const BatchShape& shape,
                           int64_t fit_tokens)
    : TokenSource(shape), vocab_(vocab_size), order_(order), bos_(data.bos()) {
  SL_CHECK(order >= 1 && order <= 3, "Markov order must be 1, 2 or 3, got " + std::to_string(order));
  int64_t n = std::min(fit_tokens, data.size());
  SL_CHECK(n > order, "Markov source needs more than " + std::to_string(order) + " tokens to fit");
  std::vector<int32_t> toks(n);
  data.copy(0, n, toks.data());
  // Every (context of length 0..order, next token) occurrence, sorted: runs give the counts.
  std::vector<std::pair<uint64_t, int32_t>> events;
  events.reserve(n * (order + 1));
  for (int64_t i = 0; i < n; ++i)
    for (int k = 0; k <= order && k <= i; ++k) events.push_back({context_key(&toks[i - k], k), toks[i]});
  std::sort(events.begin(), events.end());
  for (size_t i = 0; i < events.size();) {
    if (keys_.empty() || keys_.back() != events[i].first) {
      keys_.push_back(events[i].first);
      begin_.push_back((int64_t)next_.size());
    }
    size_t j = i;
    while (j < events.size() && events[j] == events[i]) ++j;
    int64_t prev = begin_.back() < (int64_t)cum_.size() ? cum_.back() : 0;
    next_.push_back(events[i].second);
    cum_.push_back(prev + (int64_t)(j - i));
    i = j;
  }
  begin_.push_back((int64_t)next_.size());
}

int32_t MarkovSource::sample(const int32_t* history, int len) {
  for (int k = std::min(len, order_); k >= 0; --k) {
    uint64_t key = context_key(history + len - k, k);
    auto it = std::lower_bound(keys_.begin(), keys_.end(), key);
    if (it == keys_.end() || *it != key) continue;
    size_t c = it - keys_.begin();
    auto first = cum_.begin() + begin_[c], last = cum_.begin() + begin_[c + 1];
    int64_t r = (int64_t)rng_.uniform_int(*(last - 1));
    return next_[std::upper_bound(first, last, r) - cum_.begin()];
  }
  throw Error("Markov source: no statistics for the empty context (not fitted?)");
}

void MarkovSource::fill_row(int32_t* row, int) {
  row[0] = bos_;
  for (int j = 1; j <= shape_.seq_len; ++j) row[j] = sample(row, j);
}

}  // namespace sl::data
