// The token data of a language-model run, chosen by data.source: the prepared corpus or a
// synthetic generator. Training batches come from one seeded source; validation batches are
// drawn afresh (same seed) at every evaluation so every evaluation sees the same batches; the
// probe batch for statistics is fixed.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "data/data.h"
#include "train/config.h"

namespace sl::train {

struct LMData {
  std::unique_ptr<data::TokenSource> train;
  std::function<std::unique_ptr<data::TokenSource>()> make_val;
  std::vector<int32_t> probe;  // probe_batch rows of probe_len + 1 tokens
  int vocab_size = 0;
  int32_t bos = 0;
  std::function<std::vector<int32_t>(const std::string&)> encode;
  std::function<std::string(const std::vector<int32_t>&)> decode;
};

LMData open_lm_data(const Config& cfg, int64_t batch, int64_t seq_len, int64_t probe_batch, int64_t probe_len);

}  // namespace sl::train
