#include "train/task.h"

#include "engine/precision.h"
#include "train/lm_task.h"
#include "train/vit_task.h"

namespace sl::train {

std::string Task::sample(const std::string&, int64_t, float, uint64_t) {
  throw Error("sampling needs a language model (model.type=decoder)");
}

void Task::set_probe_text(const std::string&) { throw Error("--data needs a language model (model.type=decoder)"); }

std::unique_ptr<Task> make_task(const Config& cfg, ParamStore& ps) {
  set_matmul_precision(parse_matmul_precision(cfg.s("train.dtype")));
  const std::string type = cfg.s("model.type");
  std::unique_ptr<Task> task;
  if (type == "decoder") task = std::make_unique<LMTask>(cfg, ps);
  else if (type == "vit") task = std::make_unique<ViTTask>(cfg, ps);
  else throw Error("model.type '" + type + "' has no task yet");
  Rng init((uint64_t)cfg.i("train.seed"));
  ps.finalize(init);
  return task;
}

}  // namespace sl::train
