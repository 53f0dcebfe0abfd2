#include "cli/commands.h"

namespace sl::cli {

const char* const kSweepHelp = "usage: sinklab sweep (not yet available)\n";

int cmd_sweep(const Args&) { throw Error("sinklab sweep is not yet available"); }

}  // namespace sl::cli
