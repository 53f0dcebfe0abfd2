#include <cstdio>

#include "cli/commands.h"
#include "engine/checkpoint.h"
#include "train/checkpointing.h"

namespace sl::cli {

const char* const kSampleHelp =
    "usage: sinklab sample runs/NAME [--step N] [--prompt TEXT] [--tokens N] [--temperature T]\n"
    "                      [--count N] [--seed S]\n\n"
    "Generates --count samples (default 3) of up to --tokens tokens (default 100) from the run's\n"
    "newest checkpoint (or --step N), continuing --prompt (default: a new document).\n"
    "--temperature 0 is greedy decoding (default 0.8). Decoding goes through a KV cache; beyond the\n"
    "model's context it keeps the first tokens and the most recent ones (StreamingLLM; see sinklab\n"
    "analyze --streaming). A model whose queries see later keys (attention.mask = prefix) is run on\n"
    "the last context of tokens at every step instead.\n";

int cmd_sample(const Args& args) {
  SL_CHECK(!args.empty() && args[0].rfind("--", 0) != 0, "missing run directory (see sinklab sample --help)");
  train::RunDir dir = train::open_run_dir(args[0]);
  std::string prompt;
  int64_t tokens = 100, count = 3, step = -1;
  float temperature = 0.8f;
  uint64_t seed = 1;
  for (size_t i = 1; i < args.size(); ++i) {
    SL_CHECK(i + 1 < args.size(), "option " + args[i] + " needs a value");
    const std::string& v = args[i + 1];
    if (args[i] == "--prompt") prompt = v;
    else if (args[i] == "--tokens") tokens = std::stoll(v);
    else if (args[i] == "--count") count = std::stoll(v);
    else if (args[i] == "--step") step = std::stoll(v);
    else if (args[i] == "--temperature") temperature = std::stof(v);
    else if (args[i] == "--seed") seed = std::stoull(v);
    else throw Error("unknown option '" + args[i] + "' (valid: --prompt --tokens --count --step --temperature --seed)");
    ++i;
  }
  auto steps = dir.checkpoint_steps();
  SL_CHECK(!steps.empty(), dir.path + " has no checkpoints");
  if (step < 0) step = steps.back();
  Config cfg = Config::load(dir.config());
  ParamStore ps;
  auto task = train::make_task(cfg, ps);
  train::load_params(load_checkpoint(dir.checkpoint(step)), ps, dir.checkpoint(step));
  std::printf("samples from %s at step %lld:\n", dir.path.c_str(), (long long)step);
  for (int64_t n = 0; n < count; ++n)
    std::printf("--- %lld\n%s\n", (long long)n + 1, task->sample(prompt, tokens, temperature, seed + n).c_str());
  return 0;
}

}  // namespace sl::cli
