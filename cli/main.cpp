// sinklab: train small transformers on the CPU and watch attention sinks emerge.
#include <cstdio>
#include <exception>

#include "cli/commands.h"
#include "engine/error.h"
#include "train/distributed.h"

namespace sl::cli {

const std::vector<Command>& commands() {
  static const std::vector<Command> cmds = {
      {"train", "pretrain a model from a YAML config (or resume a run)", kTrainHelp, cmd_train},
      {"sample", "generate text from a run's checkpoint", kSampleHelp, cmd_sample},
      {"replay", "recompute attention statistics from saved checkpoints", kReplayHelp, cmd_replay},
      {"analyze", "interventions on the sink and streaming evaluation with a KV cache, on checkpoints", kAnalyzeHelp,
       cmd_analyze},
      {"prepare-data", "build the corpus, train the tokenizer and write token shards", kPrepareDataHelp,
       cmd_prepare_data},
      {"sweep", "run a grid of training runs from a sweep file and summarise them", kSweepHelp, cmd_sweep},
      {"bench", "training throughput against the PyTorch reference, same threads and shapes", kBenchHelp, cmd_bench},
      {"kernels", "list the attention kernels (attention.kernel) with their formulas", kKernelsHelp, cmd_kernels},
      {"stats", "list the datasets of log.h5: name, shape, unit, meaning (--json for scripts)", kStatsHelp, cmd_stats},
      {"export", "write a checkpoint as safetensors with a transformers config and tokenizer", kExportHelp, cmd_export},
  };
  return cmds;
}

bool wants_help(const Args& args) {
  for (auto& a : args)
    if (a == "--help" || a == "-h") return true;
  return false;
}

static void usage(FILE* out) {
  std::fprintf(out, "usage: sinklab COMMAND [ARGS...]   (sinklab COMMAND --help for details)\n\ncommands:\n");
  for (auto& c : commands()) std::fprintf(out, "  %-14s %s\n", c.name, c.summary);
}

}  // namespace sl::cli

int main(int argc, char** argv) {
  using namespace sl::cli;
  sl::train::dist::init(&argc, &argv);
  struct Finalize {
    ~Finalize() { sl::train::dist::finalize(); }
  } finalize;
  if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h" || std::string(argv[1]) == "help") {
    usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  std::string name = argv[1];
  Args args(argv + 2, argv + argc);
  for (auto& c : commands()) {
    if (name != c.name) continue;
    if (wants_help(args)) {
      std::fputs(c.help, stdout);
      return 0;
    }
    try {
      return c.run(args);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "sinklab %s: error: %s\n", c.name, e.what());
      if (sl::train::dist::size() > 1) sl::train::dist::abort(1);
      return 1;
    }
  }
  std::fprintf(stderr, "sinklab: unknown command '%s'\n", name.c_str());
  usage(stderr);
  return 2;
}
