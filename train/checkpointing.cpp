#include "train/checkpointing.h"

#include <algorithm>
#include <cstdio>

#include "engine/error.h"

namespace sl::train {

void save_run_checkpoint(const RunDir& dir, int64_t step, int64_t rollbacks, ParamStore& ps, Optimizer& opt,
                         Task& task, const Config& cfg) {
  Checkpoint ck;
  for (auto& p : ps.params()) ck.tensors["param/" + p.name] = p.value;
  for (auto& [name, t] : opt.state()) ck.tensors["optim/" + name] = t;
  ck.ints["step"] = {step};
  ck.ints["optim_steps"] = {opt.steps()};
  ck.ints["rollbacks"] = {rollbacks};
  ck.ints["data_state"] = task.data_state();
  ck.strings["config"] = cfg.to_yaml();
  save_checkpoint(dir.checkpoint(step), ck);
}

void load_params(const Checkpoint& ck, ParamStore& ps, const std::string& path) {
  for (auto& p : ps.params()) {
    auto f = ck.tensors.find("param/" + p.name);
    SL_CHECK(f != ck.tensors.end(), path + ": no parameter '" + p.name + "' (was the model config changed?)");
    SL_CHECK(f->second.shape() == p.value.shape(), path + ": parameter '" + p.name + "' has shape " +
                                                       shape_str(f->second.shape()) + ", the model wants " +
                                                       shape_str(p.value.shape()));
    std::copy_n(f->second.data(), p.value.numel(), p.value.data());
  }
}

Restored restore_latest(const RunDir& dir, ParamStore& ps, Optimizer& opt, Task& task, int64_t before) {
  auto steps = dir.checkpoint_steps();
  for (auto it = steps.rbegin(); it != steps.rend(); ++it) {
    if (*it >= before) continue;
    const std::string path = dir.checkpoint(*it);
    Checkpoint ck;
    try {
      ck = load_checkpoint(path);
    } catch (const Error& e) {
      std::fprintf(stderr, "warning: skipping unreadable checkpoint: %s\n", e.what());
      continue;
    }
    load_params(ck, ps, path);
    for (auto& [name, t] : opt.state()) {
      const Tensor& saved = ck.tensor("optim/" + name, t.shape());
      std::copy_n(saved.data(), t.numel(), t.data());
    }
    opt.set_steps(ck.integers("optim_steps").at(0));
    task.set_data_state(ck.integers("data_state"));
    auto rollbacks = ck.ints.find("rollbacks");
    return {true, ck.integers("step").at(0), rollbacks == ck.ints.end() ? 0 : rollbacks->second.at(0)};
  }
  return {};
}

}  // namespace sl::train
