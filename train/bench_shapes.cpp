#include "train/bench_shapes.h"

#include <algorithm>

#include "engine/error.h"

namespace sl::train {

const std::vector<BenchShape>& bench_shapes() {
  static const std::vector<BenchShape> shapes = {{"small", 256, 4, 4, 688, 256, 256, 16},
                                                 {"large", 512, 8, 8, 1376, 8192, 256, 8},
                                                 {"calibrated", 128, 4, 4, 344, 1024, 64, 32}};
  return shapes;
}

BenchShape bench_shape(const std::string& name, int64_t vocab) {
  const auto& shapes = bench_shapes();
  auto it = std::find_if(shapes.begin(), shapes.end(), [&](const BenchShape& s) { return s.name == name; });
  std::string valid;
  for (const BenchShape& s : shapes) valid += (valid.empty() ? "" : ", ") + s.name;
  SL_CHECK(it != shapes.end(), "unknown shape '" + name + "' (valid: " + valid + ")");
  BenchShape s = *it;
  if (vocab > 0) s.vocab = vocab;
  return s;
}

Config bench_config(const BenchShape& s, const std::string& attn, const std::string& dtype, int threads) {
  Config c;
  for (std::string kv : {"model.preset=llama", "data.source=random", "train.optimizer=adamw", "train.grad_clip=0",
                         "train.schedule=constant", "train.warmup=0", "train.lr=1e-3", "train.steps=1000000000",
                         "stats.probe_batch=8", "stats.probe_len=64"})
    c.set(kv.substr(0, kv.find('=')), kv.substr(kv.find('=') + 1));
  c.set("model.d_model", std::to_string(s.d));
  c.set("model.n_layers", std::to_string(s.layers));
  c.set("model.n_heads", std::to_string(s.heads));
  c.set("model.d_ff", std::to_string(s.ffn));
  c.set("model.context", std::to_string(s.seq));
  c.set("data.vocab", std::to_string(s.vocab - 1));  // + BOS = the reference's vocabulary
  c.set("train.batch_size", std::to_string(s.batch));
  c.set("train.threads", std::to_string(threads));
  c.set("attention.kernel", attn);
  c.set("train.dtype", dtype);  // make_task sets the matmul precision from it
  return c;
}

}  // namespace sl::train
