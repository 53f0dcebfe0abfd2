#include "data/token_source.h"

#include "engine/error.h"

namespace sl::data {

FirstToken parse_first_token(const std::string& name) {
  if (name == "any") return FirstToken::any;
  if (name == "bos") return FirstToken::bos;
  if (name == "fixed") return FirstToken::fixed;
  throw Error("unknown first-token mode '" + name + "' (expected any, bos or fixed)");
}

TokenSource::TokenSource(const BatchShape& shape) : shape_(shape), rng_(shape.seed) {
  SL_CHECK(shape.batch > 0 && shape.seq_len > 0, "batch and seq_len must be positive, got batch " +
                                                     std::to_string(shape.batch) + ", seq_len " +
                                                     std::to_string(shape.seq_len));
}

void apply_first_token(int32_t* row, const BatchShape& shape, int32_t bos) {
  if (shape.first == FirstToken::bos) row[0] = bos;
  else if (shape.first == FirstToken::fixed) row[0] = shape.fixed_token;
}

std::vector<int32_t> TokenSource::next_batch() {
  if (shape_.first == FirstToken::fixed)
    SL_CHECK(shape_.fixed_token >= 0 && shape_.fixed_token < vocab_size(),
             "fixed first token " + std::to_string(shape_.fixed_token) + " outside vocabulary of " +
                 std::to_string(vocab_size()));
  const int64_t width = shape_.seq_len + 1;
  std::vector<int32_t> out(shape_.batch * width);
  begin_batch();
  for (int b = 0; b < shape_.batch; ++b) {
    fill_row(out.data() + b * width, b);
    apply_first_token(out.data() + b * width, shape_, bos());
  }
  ++batches_;
  return out;
}

std::vector<int64_t> TokenSource::state() const {
  auto s = rng_.state();
  return {(int64_t)s[0], (int64_t)s[1], (int64_t)s[2], (int64_t)s[3], batches_};
}

void TokenSource::set_state(const std::vector<int64_t>& s) {
  SL_CHECK(s.size() == 5, "token source state has 5 values (rng x4, batches), got " + std::to_string(s.size()));
  rng_.set_state({(uint64_t)s[0], (uint64_t)s[1], (uint64_t)s[2], (uint64_t)s[3]});
  batches_ = s[4];
}

}  // namespace sl::data
