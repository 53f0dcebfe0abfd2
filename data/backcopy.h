// The Bigram-Backcopy task (Guo et al. 2024, "Active-dormant attention heads"): every row starts
// with BOS; tokens follow a character-level bigram chain fitted to a text; the k most frequent
// characters are triggers, and the token after a trigger copies the token before the trigger.
// Token ids are characters ranked by frequency (0 = most frequent, so triggers are 0..k-1); BOS
// is the last id.
#pragma once
#include <string>

#include "data/token_source.h"

namespace sl::data {

class BackcopySource : public TokenSource {
 public:
  // Role flags of each position of the last batch (a copied token can also be a trigger).
  enum Role : uint8_t { kNormal = 0, kTrigger = 1, kCopy = 2 };

  BackcopySource(const std::string& text, const BatchShape& shape, int n_triggers = 3, int max_vocab = 64);
  int vocab_size() const override { return (int)chars_.size() + 1; }
  int32_t bos() const override { return (int32_t)chars_.size(); }
  bool is_trigger(int32_t token) const { return token >= 0 && token < n_triggers_; }
  char char_of(int32_t token) const { return chars_.at(token); }
  // Per position of the last batch (same layout as the batch), bit flags: kTrigger where the token is a
  // trigger, kCopy where the token was copied by the rule, kNormal elsewhere (BOS included).
  const std::vector<uint8_t>& roles() const { return roles_; }

 private:
  void begin_batch() override;
  void fill_row(int32_t* row, int index_in_batch) override;
  int32_t draw(const std::vector<int64_t>& cum);

  std::string chars_;
  int n_triggers_;
  std::vector<int64_t> unigram_cum_;
  std::vector<std::vector<int64_t>> bigram_cum_;  // per previous token; empty: use the unigram
  std::vector<uint8_t> roles_;
};

}  // namespace sl::data
