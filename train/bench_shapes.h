// The reference shapes that `sinklab bench` trains and the bench_* programs measure, and the
// configuration of a run at one of them: declared once, so every benchmark times the same model.
#pragma once
#include <string>
#include <vector>

#include "train/config.h"

namespace sl::train {

struct BenchShape {
  std::string name;
  int64_t d, layers, heads, ffn, vocab, seq, batch;
};

// small, large and calibrated (`sinklab bench --help` describes them).
const std::vector<BenchShape>& bench_shapes();

// The shape called `name` (with the vocabulary `vocab` when > 0), or an error listing the valid ones.
BenchShape bench_shape(const std::string& name, int64_t vocab = 0);

// A run at shape s: the LLaMA preset on random tokens, AdamW at a constant lr, statistics over 8
// sequences of 64 positions, with the attention kernel, train.dtype and thread count given.
Config bench_config(const BenchShape& s, const std::string& attn, const std::string& dtype, int threads);

}  // namespace sl::train
