// sinklab kernels: the attention kernels as declared in engine/attention_kernels.cpp, so that
// the README's table and scripts read the one declaration.
#include <cstdio>

#include "cli/commands.h"
#include "engine/json.h"
#include "engine/attention_kernels.h"

namespace sl::cli {

const char* const kKernelsHelp =
    "usage: sinklab kernels [--markdown | --json]\n\n"
    "Lists the attention kernels (attention.kernel): name, formula, and whether the fused attention\n"
    "core runs it (else the composed ops do). --markdown prints the README's table, --json one object\n"
    "per kernel. A kernel is added by one entry in engine/attention_kernels.cpp.\n";

int cmd_kernels(const Args& args) {
  const std::string format = args.empty() ? "" : args[0];
  SL_CHECK(args.size() <= 1 && (format.empty() || format == "--markdown" || format == "--json"),
           "sinklab kernels takes --markdown or --json (see sinklab kernels --help)");
  const auto& kernels = attention_kernels();
  if (format == "--json") {
    std::printf("[\n");
    for (size_t i = 0; i < kernels.size(); ++i) {
      const AttentionKernel& k = kernels[i];
      std::printf("  {\"name\": %s, \"formula\": %s, \"distribution\": %s, \"fused\": %s}%s\n",
                  json_string(k.name).c_str(), json_string(k.formula).c_str(), k.distribution ? "true" : "false",
                  k.fused_row ? "true" : "false", i + 1 < kernels.size() ? "," : "");
    }
    std::printf("]\n");
    return 0;
  }
  if (format == "--markdown") std::printf("| kernel | weights | fused core |\n|---|---|---|\n");
  for (const AttentionKernel& k : kernels)
    std::printf(format == "--markdown" ? "| `%s` | %s | %s |\n" : "%-14s %s%s\n", k.name, k.formula,
                format == "--markdown" ? (k.fused_row ? "yes" : "no") : (k.fused_row ? "  [fused]" : ""));
  return 0;
}

}  // namespace sl::cli
