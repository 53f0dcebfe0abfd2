#include "train/checkpointing.h"

#include <algorithm>
#include <cstdio>

#include "engine/error.h"

namespace sl::train {

static std::string join_steps(const std::vector<int64_t>& steps) {
  std::string s;
  for (int64_t st : steps) s += (s.empty() ? "" : ", ") + std::to_string(st);
  return s;
}

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

std::string Replayed::str() const {
  std::string s = std::to_string(visited) + " checkpoint" + (visited == 1 ? "" : "s");
  if (!skipped.empty()) {
    s += "; skipped " + std::to_string(skipped.size()) + " unreadable:";
    for (const std::string& p : skipped) s += " " + p;
  }
  return s;
}

std::vector<int64_t> chosen_steps(const RunDir& dir, const CheckpointChoice& which, const std::string& output) {
  std::vector<int64_t> steps = dir.checkpoint_steps();
  SL_CHECK(!steps.empty(), dir.path + " has no checkpoints (train.checkpoint_every writes them); " + output +
                               " was left as it was");
  if (which.step >= 0) {
    SL_CHECK(std::count(steps.begin(), steps.end(), which.step), dir.path + " has no checkpoint of step " +
                                                                     std::to_string(which.step) + "; it has steps " +
                                                                     join_steps(steps));
    steps = {which.step};
  }
  if (!which.every && which.step < 0) std::reverse(steps.begin(), steps.end());  // the newest that reads back
  return steps;
}

Replayed replay_checkpoints(const RunDir& dir, const CheckpointChoice& which, ParamStore& ps, const std::string& output,
                            const std::function<void(int64_t step, size_t index, size_t count)>& visit) {
  const std::vector<int64_t> steps = chosen_steps(dir, which, output);
  const bool newest = !which.every && which.step < 0;
  Replayed r;
  for (size_t n = 0; n < steps.size() && !(newest && r.visited); ++n) {
    const std::string path = dir.checkpoint(steps[n]);
    try {
      load_params(load_checkpoint(path), ps, path);
    } catch (const Error& e) {
      std::fprintf(stderr, "%swarning: skipping unreadable checkpoint: %s\n", r.visited ? "\n" : "", e.what());
      r.skipped.push_back(path);
      continue;
    }
    ++r.visited;
    visit(steps[n], n, steps.size());
  }
  SL_CHECK(r.visited > 0, dir.path + " has no checkpoint that reads back intact (" + std::to_string(r.skipped.size()) +
                              " unreadable); " + output + " was left as it was");
  return r;
}

}  // namespace sl::train
