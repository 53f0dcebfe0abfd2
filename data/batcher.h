// Batches of windows from a prepared split (the packed token stream with a BOS before each
// document): random windows anywhere (default), or windows that start at a document's BOS.
#pragma once
#include "data/token_source.h"
#include "data/token_stream.h"

namespace sl::data {

enum class WindowMode { random, doc_aligned };
WindowMode parse_window_mode(const std::string& name);  // "random", "doc_aligned"

struct BatcherOptions : BatchShape {
  WindowMode mode = WindowMode::random;
  int64_t max_tokens = 0;  // use only the first N tokens of the split (0: all)
};

class Batcher : public TokenSource {
 public:
  Batcher(const TokenSplit& split, int vocab_size, const BatcherOptions& opt);
  int vocab_size() const override { return vocab_size_; }
  int32_t bos() const override { return split_.bos(); }
  int64_t tokens_used() const { return split_.size(); }

 private:
  void fill_row(int32_t* row, int) override;

  TokenSplit split_;
  int vocab_size_;
  WindowMode mode_;
  std::vector<int64_t> starts_;  // doc_aligned: document starts with a whole window after them
};

// A fixed batch for probing (attention statistics, evaluation): windows at evenly spaced document
// starts of `split` (evenly spaced positions if it has too few documents). No randomness.
std::vector<int32_t> probe_batch(const TokenSplit& split, const BatchShape& shape);
// Windows at up to shape.batch evenly spaced entries of `starts` (positions in `split`) that have
// a whole window after them; fewer rows when fewer do. No randomness.
std::vector<int32_t> windows_at(const TokenSplit& split, const std::vector<int64_t>& starts, const BatchShape& shape);

}  // namespace sl::data
