#include <unistd.h>

#include <climits>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "cli/commands.h"
#include "train/sweep.h"

namespace sl::cli {

const char* const kSweepHelp =
    "usage: sinklab sweep SWEEP.yaml [--jobs N] [--threads T] [--pin] [--summary] [--dry-run]\n"
    "                    [--hostfile FILE] [--slurm] [--only I|NAME] [--into DIR [--import D]]\n"
    "                    [key.sub=value ...]\n\n"
    "Runs every run of a sweep file (a base config, a grid and/or named variants of overrides; see\n"
    "experiments/README.md) as its own `sinklab train` process into runs/<sweep>/<run>, then writes\n"
    "runs/<sweep>/summary.md, summary.csv (a row per run), summary_seeds.csv (mean, std, n over the\n"
    "seeds of each variant), curves/<run>.csv and the comparison plots. Finished runs are skipped and\n"
    "interrupted ones resumed, so rerunning the same command continues a sweep; a failed run is\n"
    "reported with its stderr tail (runs/<sweep>/logs/) and the others go on.\n"
    "  --jobs N       runs at a time (default 1); each gets OMP_NUM_THREADS = cores / N\n"
    "  --threads T    OMP_NUM_THREADS per run instead\n"
    "  --pin          each run at a time on its own T CPUs (the k-th of N on the k-th T of the CPUs\n"
    "                 the sweep may use; N x T must not exceed them), for a machine given to the\n"
    "                 sweep alone; with train.pin_threads=true a run binds one thread to each\n"
    "  --summary      only write the summary of what has run so far\n"
    "  --dry-run      print each run's state and command; run nothing\n"
    "  --hostfile F   place runs on the hosts of an MPI hostfile (`host slots=N` lines) through\n"
    "                 `mpirun --host H -np 1`; needs a shared file system\n"
    "  --slurm        write runs/<sweep>/sweep.slurm, a Slurm array script with one task per run\n"
    "  --only I|NAME  run only the run with index I (what each Slurm task does) or that name\n"
    "  --into DIR     also merge the summary into a results directory (experiments/results):\n"
    "                 DIR/SWEEP.csv keeps its rows of runs without a log here, DIR/SWEEP_seeds.csv\n"
    "                 and SWEEP.md are remade from it, DIR/curves/SWEEP/RUN.csv per run\n"
    "  --import D     with --into: merge the summary another machine wrote into its sweep\n"
    "                 directory D (summary.csv, curves/) instead; nothing runs, no logs are read\n"
    "Overrides after the file apply to every run (e.g. run.dir=/scratch/runs train.steps=100).\n";

static std::string self_exe() {
  char buf[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  SL_CHECK(n > 0, "cannot find the sinklab binary (/proc/self/exe)");
  return std::string(buf, (size_t)n);
}

// --only's run: an index into the sweep's runs or a run's name.
static int run_index(const train::Sweep& sw, const std::string& which) {
  for (size_t i = 0; i < sw.runs.size(); ++i)
    if (sw.runs[i].name == which) return (int)i;
  if (!which.empty() && which.find_first_not_of("0123456789") == std::string::npos && which.size() < 9 &&
      std::stoi(which) < (int)sw.runs.size())
    return std::stoi(which);
  std::vector<std::string> names;
  for (auto& r : sw.runs) names.push_back(r.name);
  throw Error("--only " + which + ": no such run in sweep " + sw.name + " (index 0.." +
              std::to_string(sw.runs.size() - 1) + " or a name: " + train::join(names, ", ") + ")");
}

int cmd_sweep(const Args& args) {
  std::string file, hostfile, only, into, import;
  std::vector<std::string> extra;
  train::SweepOptions opt;
  bool summary_only = false, slurm = false;
  auto number = [&](size_t& i) {
    SL_CHECK(i + 1 < args.size(), args[i] + " needs a number");
    try {
      return std::stoi(args[++i]);
    } catch (const std::exception&) {
      throw Error(args[i - 1] + " needs a number, got '" + args[i] + "'");
    }
  };
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--jobs") opt.jobs = number(i);
    else if (a == "--threads") opt.threads = number(i);
    else if (a == "--only") {
      SL_CHECK(i + 1 < args.size(), "--only needs a run index or name");
      only = args[++i];
    }
    else if (a == "--summary") summary_only = true;
    else if (a == "--dry-run") opt.dry_run = true;
    else if (a == "--pin") opt.pin = true;
    else if (a == "--slurm") slurm = true;
    else if (a == "--into" || a == "--import") {
      SL_CHECK(i + 1 < args.size(), a + " needs a directory");
      (a == "--into" ? into : import) = args[++i];
    } else if (a == "--hostfile") {
      SL_CHECK(i + 1 < args.size(), "--hostfile needs a file");
      hostfile = args[++i];
    } else if (a.find('=') != std::string::npos) extra.push_back(a);
    else if (a.rfind("--", 0) == 0) throw Error("unknown option '" + a + "' (see sinklab sweep --help)");
    else if (file.empty()) file = a;
    else throw Error("unexpected argument '" + a + "': overrides look like key.sub=value");
  }
  SL_CHECK(!file.empty(), "missing SWEEP.yaml (see sinklab sweep --help)");
  SL_CHECK(opt.jobs >= 1, "--jobs must be >= 1");
  if (!hostfile.empty()) opt.hosts = train::read_hostfile(hostfile);
  SL_CHECK(import.empty() || !into.empty(), "--import needs --into RESULTS (where to merge it)");
  const train::Sweep sw = train::load_sweep(file, extra);
  if (!import.empty()) {
    train::merge_summary(sw, import, into);
    std::printf("merged %s into %s/%s.csv, %s_seeds.csv, %s.md and curves/%s/\n", import.c_str(), into.c_str(),
                sw.name.c_str(), sw.name.c_str(), sw.name.c_str(), sw.name.c_str());
    return 0;
  }
  if (!only.empty()) opt.only = run_index(sw, only);
  const std::string exe = self_exe();

  if (slurm) {
    const int threads = opt.threads > 0 ? opt.threads : 1;
    std::filesystem::create_directories(sw.logs());
    std::ofstream(sw.dir + "/sweep.slurm") << train::slurm_script(sw, exe, threads, extra);
    std::printf("wrote %s/sweep.slurm (%zu tasks); submit with: sbatch %s/sweep.slurm\n", sw.dir.c_str(),
                sw.runs.size(), sw.dir.c_str());
    return 0;
  }
  int failed = 0;
  if (!summary_only) {
    failed = train::run_sweep(sw, opt, exe);
    if (opt.dry_run) return 0;
    if (failed < 0) return 130;  // stopped by a signal: no summary of a half-run sweep
    if (opt.only >= 0) return failed ? 1 : 0;
  }
  std::fputs(train::write_summary(sw, exe).c_str(), stdout);
  std::printf("\nwrote %s/summary.md, summary.csv, summary_seeds.csv and curves/\n", sw.dir.c_str());
  if (!into.empty()) {
    train::merge_summary(sw, sw.dir, into);
    std::printf("merged into %s/%s.csv, %s_seeds.csv, %s.md and curves/%s/\n", into.c_str(), sw.name.c_str(),
                sw.name.c_str(), sw.name.c_str(), sw.name.c_str());
  }
  return failed ? 1 : 0;
}

}  // namespace sl::cli
