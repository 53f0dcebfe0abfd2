#include "cli/commands.h"

namespace sl::cli {

const char* const kBenchHelp = "usage: sinklab bench (not yet available)\n";

int cmd_bench(const Args&) { throw Error("sinklab bench is not yet available"); }

}  // namespace sl::cli
