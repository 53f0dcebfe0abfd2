// The subcommands of the `sinklab` binary. Each lives in cli/cmd_<name>.cpp and returns an exit code.
#pragma once
#include <string>
#include <vector>

#include "engine/error.h"

namespace sl::cli {

using Args = std::vector<std::string>;

struct Command {
  const char* name;
  const char* summary;
  const char* help;  // full usage text printed by `sinklab NAME --help`
  int (*run)(const Args& args);
};

const std::vector<Command>& commands();

int cmd_train(const Args&);
int cmd_sample(const Args&);
int cmd_replay(const Args&);
int cmd_prepare_data(const Args&);
int cmd_sweep(const Args&);
int cmd_bench(const Args&);
int cmd_kernels(const Args&);
int cmd_stats(const Args&);
int cmd_export(const Args&);
int cmd_analyze(const Args&);

extern const char* const kTrainHelp;
extern const char* const kSampleHelp;
extern const char* const kReplayHelp;
extern const char* const kPrepareDataHelp;
extern const char* const kSweepHelp;
extern const char* const kBenchHelp;
extern const char* const kKernelsHelp;
extern const char* const kStatsHelp;
extern const char* const kExportHelp;
extern const char* const kAnalyzeHelp;

bool wants_help(const Args& args);

}  // namespace sl::cli
