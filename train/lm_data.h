// The token data of a language-model run, chosen by data.source: the prepared corpus or a
// synthetic generator. Training batches come from one seeded source; validation batches are
// drawn afresh (same seed) at every evaluation so every evaluation sees the same batches; the
// probe batch for statistics is fixed.
#pragma once
#include <functional>
#include <map>
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
  // Fixed held-out windows of any shape, `batch` rows of seq_len + 1 tokens with the first-token
  // rule applied: at evenly spaced validation document starts (corpus), else drawn with the
  // validation seed.
  std::function<std::vector<int32_t>(int64_t batch, int64_t seq_len)> held_out;
  // The same per corpus source, from the validation documents of that source that hold a whole
  // window (fewer rows where fewer do; a source without any is left out). Unset for synthetic data.
  std::function<std::map<std::string, std::vector<int32_t>>(int64_t batch, int64_t seq_len)> held_out_by_source;
  int vocab_size = 0;
  int32_t bos = 0;
  std::function<std::vector<int32_t>(const std::string&)> encode;
  std::function<std::string(const std::vector<int32_t>&)> decode;
};

LMData open_lm_data(const Config& cfg, int64_t batch, int64_t seq_len, int64_t probe_batch, int64_t probe_len);

}  // namespace sl::train
