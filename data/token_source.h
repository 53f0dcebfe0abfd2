// The common interface of everything that feeds a trainer batches of token windows: the Batcher
// over prepared shards and the synthetic sources. A batch is `batch` rows of seq_len + 1 tokens
// (inputs are a row's first seq_len tokens, targets the last seq_len), row-major.
// The whole state is a few int64 values (RNG state and batch counter), so a resumed run can
// continue with exactly the batches an uninterrupted one would have drawn.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "engine/rng.h"

namespace sl::data {

// What a row's first token is: as sampled, replaced by BOS, or replaced by a fixed token id.
enum class FirstToken { any, bos, fixed };
FirstToken parse_first_token(const std::string& name);  // "any", "bos", "fixed"

struct BatchShape {
  int batch = 8;
  int seq_len = 64;  // T
  uint64_t seed = 0;
  FirstToken first = FirstToken::any;
  int32_t fixed_token = 0;  // for FirstToken::fixed
};

// Applies shape.first to a row (position 0 becomes BOS or the fixed token; `any` leaves it).
void apply_first_token(int32_t* row, const BatchShape& shape, int32_t bos);

class TokenSource {
 public:
  explicit TokenSource(const BatchShape& shape);
  virtual ~TokenSource() = default;

  std::vector<int32_t> next_batch();  // batch * (seq_len + 1) tokens
  std::vector<int64_t> state() const;  // {rng words x4, batches drawn}
  void set_state(const std::vector<int64_t>& s);

  virtual int vocab_size() const = 0;
  virtual int32_t bos() const = 0;
  const BatchShape& shape() const { return shape_; }
  int64_t batches_drawn() const { return batches_; }

 protected:
  // Writes one row of seq_len + 1 tokens (before the first-token rule is applied).
  virtual void fill_row(int32_t* row, int index_in_batch) = 0;
  // Called once per batch before its rows are filled (sources that record per-batch data).
  virtual void begin_batch() {}

  BatchShape shape_;
  Rng rng_;

 private:
  int64_t batches_ = 0;
};

}  // namespace sl::data
