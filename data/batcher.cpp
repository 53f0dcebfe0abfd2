#include "data/batcher.h"

#include <algorithm>

#include "engine/error.h"

namespace sl::data {

WindowMode parse_window_mode(const std::string& name) {
  if (name == "random") return WindowMode::random;
  if (name == "doc_aligned") return WindowMode::doc_aligned;
  throw Error("unknown window mode '" + name + "' (expected random or doc_aligned)");
}

Batcher::Batcher(const TokenSplit& split, int vocab_size, const BatcherOptions& opt)
    : TokenSource(opt),
      split_(opt.max_tokens > 0 ? split.prefix(std::min(opt.max_tokens, split.size())) : split),
      vocab_size_(vocab_size),
      mode_(opt.mode) {
  const int64_t width = opt.seq_len + 1;
  SL_CHECK(split_.size() >= width, "split has " + std::to_string(split_.size()) +
                                       " tokens, fewer than one window of seq_len + 1 = " + std::to_string(width));
  if (mode_ == WindowMode::doc_aligned) {
    for (int64_t s : split_.doc_starts())
      if (s + width <= split_.size()) starts_.push_back(s);
    SL_CHECK(!starts_.empty(), "doc_aligned windows need a document start (BOS) with " + std::to_string(width) +
                                   " tokens after it; the split has none");
  }
}

void Batcher::fill_row(int32_t* row, int) {
  const int64_t width = shape_.seq_len + 1;
  int64_t start = mode_ == WindowMode::doc_aligned ? starts_[rng_.uniform_int(starts_.size())]
                                                   : (int64_t)rng_.uniform_int(split_.size() - width + 1);
  split_.copy(start, width, row);
}

std::vector<int32_t> windows_at(const TokenSplit& split, const std::vector<int64_t>& starts, const BatchShape& shape) {
  const int64_t width = shape.seq_len + 1;
  std::vector<int64_t> fit;
  for (int64_t s : starts)
    if (s + width <= split.size()) fit.push_back(s);
  const int64_t n = std::min<int64_t>(shape.batch, (int64_t)fit.size());
  std::vector<int32_t> out(n * width);
  for (int64_t b = 0; b < n; ++b) {
    int32_t* row = out.data() + b * width;
    split.copy(fit[fit.size() * b / n], width, row);
    apply_first_token(row, shape, split.bos());
  }
  return out;
}

std::vector<int32_t> probe_batch(const TokenSplit& split, const BatchShape& shape) {
  const int64_t width = shape.seq_len + 1;
  SL_CHECK(split.size() >= width, "probe split has " + std::to_string(split.size()) + " tokens, fewer than " +
                                      std::to_string(width));
  std::vector<int32_t> out = windows_at(split, split.doc_starts(), shape);
  if ((int64_t)out.size() == shape.batch * width) return out;
  std::vector<int64_t> positions;  // too few documents
  for (int b = 0; b < shape.batch; ++b) positions.push_back((split.size() - width) * b / shape.batch);
  return windows_at(split, positions, shape);
}

}  // namespace sl::data
