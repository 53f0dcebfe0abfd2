// sinklab stats --list: the declared datasets of log.h5 (models/statistics.h), for people, for
// scripts (--json) and for the README (--markdown).
#include <cstdio>
#include <string>

#include "cli/commands.h"
#include "models/statistics.h"

namespace sl::cli {

const char* const kStatsHelp =
    "usage: sinklab stats --list [--json | --markdown]\n\n"
    "Lists every dataset a run writes to log.h5 (and replay writes to replay.h5): its name, the\n"
    "shape of one row in symbolic axes (the dataset is [steps, row...], with NAME_step beside it),\n"
    "its unit and what it measures. With stats.source = both, the training forward's statistics\n"
    "are logged again under train_batch/NAME.\n"
    "--json      the listing as JSON, with the axes, the summary columns and which statistic a\n"
    "            paper metric supersedes (scripts/plot_sinks.py reads it)\n"
    "--markdown  the dataset table of the README\n";

namespace {

using models::Statistic;

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if ((unsigned char)c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

std::string shape_text(const Statistic& s) {
  std::string t = "[";
  for (size_t i = 0; i < s.shape.size(); ++i) t += (i ? ", " : "") + std::string(models::axis_name(s.shape[i]));
  return t + "]";
}

void print_json() {
  std::string out = "{\n  \"axes\": {";
  bool first = true;
  for (models::Axis a : models::kAxes) {
    out += (first ? "\n    " : ",\n    ") + json_string(models::axis_name(a)) + ": " + json_string(models::axis_doc(a));
    first = false;
  }
  out += "\n  },\n  \"prefixes\": {\"train_batch/\": " +
         json_string("stats.source = both: the statistics of the training forward") + "},\n  \"statistics\": [";
  first = true;
  for (const Statistic& s : models::statistics()) {
    out += first ? "\n    {" : ",\n    {";
    first = false;
    out += "\"name\": " + json_string(s.name) + ", \"shape\": [";
    for (size_t i = 0; i < s.shape.size(); ++i) out += (i ? ", " : "") + json_string(models::axis_name(s.shape[i]));
    out += "], \"unit\": " + json_string(s.unit) + ", \"doc\": " + json_string(s.doc) +
           ", \"from\": " + json_string(s.compute ? "capture" : "run") +
           ", \"supersedes\": " + (s.supersedes.empty() ? "null" : json_string(s.supersedes)) + ", \"summary\": [";
    for (size_t i = 0; i < s.summary.size(); ++i) {
      const models::SummaryColumn& c = s.summary[i];
      out += (i ? ", " : "") + std::string("{\"header\": ") + json_string(c.header) +
             ", \"format\": " + json_string(c.format) + ", \"doc\": " + json_string(c.doc) + ", \"over\": " +
             json_string(c.over == models::SummaryColumn::Over::Max ? "max" : "last") + "}";
    }
    out += "]}";
  }
  out += "\n  ]\n}\n";
  std::fputs(out.c_str(), stdout);
}

// A table cell: '|' would end it, '*' could start emphasis.
std::string markdown_cell(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '|' || c == '*') out += '\\';
    out += c;
  }
  return out;
}

void print_markdown() {
  std::printf("| dataset | row shape | unit | what it measures |\n|---|---|---|---|\n");
  for (const Statistic& s : models::statistics()) {
    std::string doc = s.doc;
    if (!s.supersedes.empty()) doc += "; reports read it in place of `" + s.supersedes + "`";
    std::printf("| `%s` | %s | %s | %s |\n", s.name.c_str(), shape_text(s).c_str(), s.unit.c_str(),
                markdown_cell(doc).c_str());
  }
  std::printf("\nAxes:");
  bool first = true;
  for (models::Axis a : models::kAxes) {
    std::printf("%s %s = %s", first ? "" : ";", models::axis_name(a), models::axis_doc(a));
    first = false;
  }
  std::printf(".\n");
}

void print_text() {
  std::printf("%-30s %-28s %-11s %s\n", "NAME", "ROW SHAPE", "UNIT", "WHAT IT MEASURES");
  for (const Statistic& s : models::statistics())
    std::printf("%-30s %-28s %-11s %s%s\n", s.name.c_str(), shape_text(s).c_str(), s.unit.c_str(), s.doc.c_str(),
                s.supersedes.empty() ? "" : (" (reports read it in place of " + s.supersedes + ")").c_str());
  std::printf("\naxes:\n");
  for (models::Axis a : models::kAxes) std::printf("  %-10s %s\n", models::axis_name(a), models::axis_doc(a));
  std::printf("\nWith stats.source = both, the training forward's statistics also appear as train_batch/NAME.\n");
}

}  // namespace

int cmd_stats(const Args& args) {
  bool list = false;
  std::string format;
  for (const std::string& a : args) {
    if (a == "--list") {
      list = true;
    } else if (a == "--json" || a == "--markdown") {
      SL_CHECK(format.empty(), "choose one of --json and --markdown (see sinklab stats --help)");
      format = a;
    } else {
      throw Error("unknown option '" + a + "'; valid: --list, --json, --markdown (see sinklab stats --help)");
    }
  }
  SL_CHECK(list, "what to do? sinklab stats --list [--json | --markdown] (see sinklab stats --help)");
  if (format == "--json") print_json();
  else if (format == "--markdown") print_markdown();
  else print_text();
  return 0;
}

}  // namespace sl::cli
