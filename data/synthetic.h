// Synthetic token sources for controlled experiments. Data tokens are 0..n-1 and BOS is n, so
// vocab_size = n + 1; every row starts with BOS (before the first-token rule of the shape).
#pragma once
#include "data/token_source.h"
#include "data/token_stream.h"

namespace sl::data {

// Tokens drawn uniformly at random: nothing to learn beyond the unigram.
class UniformSource : public TokenSource {
 public:
  UniformSource(int n_symbols, const BatchShape& shape);
  int vocab_size() const override { return n_ + 1; }
  int32_t bos() const override { return n_; }

 private:
  void fill_row(int32_t* row, int) override;
  int n_;
};

// A fresh random pattern of `period` tokens per row, repeated to fill it: perfectly predictable
// after the first period (an induction/copy task).
class RepeatSource : public TokenSource {
 public:
  RepeatSource(int n_symbols, int period, const BatchShape& shape);
  int vocab_size() const override { return n_ + 1; }
  int32_t bos() const override { return n_; }

 private:
  void fill_row(int32_t* row, int) override;
  int n_, period_;
};

// A Markov chain of order 1..3 (the next token depends on the previous `order` tokens) fitted to
// the first `fit_tokens` of a token stream; unseen contexts back off to shorter ones. Unlimited
// text with the local statistics of the corpus, in the corpus's own vocabulary and BOS.
class MarkovSource : public TokenSource {
 public:
  MarkovSource(const TokenSplit& data, int vocab_size, int order, const BatchShape& shape,
               int64_t fit_tokens = 2'000'000);
  int vocab_size() const override { return vocab_; }
  int32_t bos() const override { return bos_; }

 private:
  void fill_row(int32_t* row, int) override;
  int32_t sample(const int32_t* history, int len);

  int vocab_, order_;
  int32_t bos_;
  // Contexts sorted by key; context c's next tokens are next_[begin_[c] .. begin_[c+1]) with
  // cumulative counts in cum_.
  std::vector<uint64_t> keys_;
  std::vector<int64_t> begin_;
  std::vector<int32_t> next_;
  std::vector<int64_t> cum_;
};

}  // namespace sl::data
