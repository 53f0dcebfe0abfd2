#include "data/batcher.h"

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

std::vector<int32_t> probe_batch(const TokenSplit& split, const BatchShape& shape) {
  const int64_t width = shape.seq_len + 1;
  SL_CHECK(split.size() >= width, "probe split has " + std::to_string(split.size()) + " tokens, fewer than " +
                                      std::to_string(width));
  std::vector<int64_t> starts;
  for (int64_t s : split.doc_starts())
    if (s + width <= split.size()) starts.push_back(s);
  std::vector<int32_t> out(shape.batch * width);
  for (int b = 0; b < shape.batch; ++b) {
    int64_t start = (int64_t)starts.size() >= shape.batch ? starts[starts.size() * b / shape.batch]
                                                          : (split.size() - width) * b / shape.batch;
    int32_t* row = out.data() + b * width;
    split.copy(start, width, row);
    apply_first_token(row, shape, split.bos());
  }
  return out;
}

}  // namespace sl::data
