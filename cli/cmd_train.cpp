#include <cstdio>
#include <filesystem>

#include "cli/commands.h"
#include "train/config.h"
#include "train/distributed.h"
#include "train/trainer.h"

namespace sl::cli {

const char* const kTrainHelp =
    "usage: sinklab train CONFIG.yaml [key.sub=value ...]\n"
    "       sinklab train --resume runs/NAME [key.sub=value ...]\n\n"
    "Pretrains the model described by CONFIG.yaml (defaults in configs/) into run.dir/run.name\n"
    "(run.name defaults to the config file's name). Overrides replace single keys, e.g.\n"
    "  sinklab train configs/default.yaml train.steps=200 attention.kernel=sigmoid\n"
    "The run directory holds config.yaml (resolved), log.h5 (metrics and attention statistics\n"
    "at every step) and checkpoints/. An existing run is never overwritten unless run.overwrite=true.\n"
    "--resume continues a run from its newest intact checkpoint; the continued loss curve equals\n"
    "an uninterrupted run's. Ctrl-C (SIGINT) or SIGTERM saves a checkpoint before exiting.\n"
    "A non-finite loss, gradient, weight or statistic stops the run naming the step, the layer and\n"
    "the tensor, before anything of that step is logged or saved; with train.on_nan=rollback it\n"
    "reloads the newest sound checkpoint and goes on with the lr times train.rollback_lr_factor.\n"
    "--stop-after N stops (with a checkpoint) after N steps of this invocation.\n";

// Error messages echo keys and values from the config; control characters from a broken or
// binary file must not break the one-line message, and a megabyte of garbage must not flood it.
static std::string one_line(const std::string& msg) {
  constexpr size_t kMaxChars = 2000;
  std::string out;
  for (unsigned char c : msg) {
    if (out.size() >= kMaxChars) return out + "...";
    if (c == '\n') out += "\\n";
    else if (c < 0x20 || c == 0x7f) out += '?';
    else out += (char)c;
  }
  return out;
}

static int64_t parse_steps(const std::string& text) {
  size_t used = 0;
  int64_t n = 0;
  try {
    n = std::stoll(text, &used);
  } catch (const std::exception&) {
  }
  SL_CHECK(used == text.size() && n > 0, "--stop-after needs a positive number of steps, got '" + text + "'");
  return n;
}

static int run_train(const Args& args) {
  std::string config_path, resume_dir;
  int64_t stop_after = 0;
  std::vector<std::string> overrides;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--resume") {
      if (i + 1 >= args.size()) throw Error("--resume needs a run directory");
      resume_dir = args[++i];
    } else if (args[i] == "--stop-after") {
      if (i + 1 >= args.size()) throw Error("--stop-after needs a number of steps");
      stop_after = parse_steps(args[++i]);
    } else if (args[i].find('=') != std::string::npos) {
      overrides.push_back(args[i]);
    } else if (args[i].rfind("--", 0) == 0) {
      throw Error("unknown option '" + args[i] + "' (see sinklab train --help)");
    } else if (config_path.empty()) {
      config_path = args[i];
    } else {
      throw Error("unexpected argument '" + args[i] + "': overrides look like key.sub=value");
    }
  }
  if (!resume_dir.empty()) {
    SL_CHECK(config_path.empty(), "give either CONFIG.yaml or --resume DIR, not both");
    train::RunDir dir = train::open_run_dir(resume_dir);
    Config cfg = Config::load(dir.config(), overrides);
    auto s = train::train(cfg, dir, true, stop_after);
    if (!train::dist::root()) return 0;
    if (s.already_complete)
      std::printf("run %s is complete at step %lld (train.steps = %lld); nothing to train. To train longer: sinklab "
                  "train --resume %s train.steps=N\n",
                  dir.path.c_str(), (long long)s.steps, (long long)cfg.i("train.steps"), dir.path.c_str());
    else
      std::printf("done: %lld steps, loss %.4f, val %.4f\n", (long long)s.steps, s.train_loss, s.val_loss);
    return 0;
  }
  SL_CHECK(!config_path.empty(), "missing CONFIG.yaml (see sinklab train --help)");
  Config cfg = Config::load(config_path, overrides);
  std::string name = cfg.s("run.name");
  if (name.empty()) name = std::filesystem::path(config_path).stem().string();
  SL_CHECK(name != "." && name != ".." && name.find('/') == std::string::npos,
           "run.name must be a plain folder name (no '/', not '.' or '..'), got '" + name + "'");
  cfg.set("run.name", name);
  // Under mpirun, rank 0 creates the run directory; the others wait for it.
  const std::string path = cfg.s("run.dir") + "/" + name;
  train::RunDir dir = train::dist::root() ? train::create_run_dir(path, cfg.b("run.overwrite")) : train::RunDir{path};
  train::dist::barrier();
  auto s = train::train(cfg, dir, false, stop_after);
  if (train::dist::root()) std::printf("done: %lld steps, loss %.4f, val %.4f -> %s\n", (long long)s.steps, s.train_loss, s.val_loss,
              dir.path.c_str());
  return 0;
}

int cmd_train(const Args& args) {
  try {
    return run_train(args);
  } catch (const std::exception& e) {
    throw Error(one_line(e.what()));
  }
}

}  // namespace sl::cli
