// Sweeps: many training runs described by one YAML file, run as independent `sinklab train`
// processes, then summarised into one table.
//
//   base: ../configs/default.yaml        # config, relative to the sweep file
//   claim: "Gu et al.: ..."              # shown in the summary and the report
//   overrides: [train.steps=2000]        # for every run (optional)
//   grid:                                # cartesian product (optional)
//     train.lr: [1.0e-3, 3.0e-3]
//   variants:                            # named runs (optional), crossed with the grid if both
//     softmax: {attention.kernel: softmax}
//     sigmoid: {attention.kernel: sigmoid, seeds: [1]}   # its own seeds instead of the file's
//   seeds: [1, 2, 3]                     # each run once per seed (optional): train.seed = data.seed
//   rule: ...                            # the verdict rule, read by scripts/report.py only
//
// Runs go to <run.dir>/<sweep name>/<run name>; the sweep name is the file's stem, a run's
// name joins its variant and its grid values ("sigmoid_lr-1.0e-3"), then "_s<seed>" when there
// are seeds ("softmax_lr-3.0e-3_s2").
#pragma once
#include <string>
#include <vector>

#include "train/config.h"
#include "train/csv_table.h"

namespace sl::train {

// The strings joined with `sep` between them.
std::string join(const std::vector<std::string>& parts, const std::string& sep);

struct SweepRun {
  std::string name;                    // a file-system-safe folder name: variant, then "_s<seed>"
  std::string variant;                 // the name without the seed: the runs a seed aggregate averages
  std::string seed;                    // empty when the sweep has no seeds axis
  std::vector<std::string> overrides;  // this run's own "key=value": the variant's, the grid's, the seed's
  int64_t steps = 0;                   // train.steps of its resolved config
  std::string dir;                     // <sweep dir>/<name>
};

struct Sweep {
  std::string file, name, base, claim;
  std::vector<std::string> common;  // the file's `overrides:`, then the command line's
  std::vector<SweepRun> runs;
  std::string dir;                  // <run.dir>/<name>
  std::string logs() const { return dir + "/logs"; }
  // Every override of a run, in order of precedence: common, own, then run.dir and run.name.
  std::vector<std::string> overrides_of(const SweepRun& r) const;
};

// Reads and checks a sweep file; every run's config is resolved so that mistakes surface
// before anything starts. `extra` overrides apply to every run after the file's.
Sweep load_sweep(const std::string& path, const std::vector<std::string>& extra = {});

// Finished: the checkpoint at train.steps exists. Interrupted: a checkpoint after step 0 exists.
enum class RunState { Pending, Interrupted, Finished };
RunState run_state(const SweepRun& r);
const char* state_name(RunState s);

// One host of an MPI hostfile ("node01 slots=4"); runs are placed with mpirun --host.
struct Host {
  std::string name;
  int slots = 1;
};
std::vector<Host> read_hostfile(const std::string& path);

struct SweepOptions {
  int jobs = 1;             // runs at a time (with a hostfile: default the total slots)
  int threads = 0;          // OMP_NUM_THREADS per run; 0 = cores / jobs (local runs) or 1 (hosts)
  std::vector<Host> hosts;  // empty: local processes
  bool dry_run = false;     // print the commands, run nothing
  bool pin = false;         // local runs on disjoint CPUs: the k-th of `jobs` slots on the k-th `threads` of them
  int only = -1;            // run just this run index (a Slurm array task)
};

// The command line of run `r` (train CONFIG ... or train --resume DIR), on `host` if not empty.
std::vector<std::string> run_command(const Sweep& sw, const SweepRun& r, RunState state, const std::string& exe,
                                     int threads, const std::string& host);

// Runs every unfinished run (skipping finished ones, resuming interrupted ones), `jobs` at a
// time, reporting progress; a failed run is reported with its stderr tail and the others go on.
// SIGINT/SIGTERM stop the running runs (they checkpoint) and return. Returns the failed count.
int run_sweep(const Sweep& sw, const SweepOptions& opt, const std::string& exe);

// A Slurm array script with one task per run (`sinklab sweep FILE --only $SLURM_ARRAY_TASK_ID`).
std::string slurm_script(const Sweep& sw, const std::string& exe, int threads, const std::vector<std::string>& extra);

// In the sweep directory: summary.csv (one row per run), summary_seeds.csv (seed_aggregate of
// it), summary.md (both tables), curves/<run>.csv (read_run_curve, for the runs with a log),
// then the comparison plots (scripts/plot_sinks.py; a plotting failure is only a warning).
// Returns the Markdown.
std::string write_summary(const Sweep& sw, const std::string& exe);

// Merges the summary that write_summary left in `from` (this machine's sweep directory, or one
// copied from another machine) into the results directory `into` (experiments/results):
// <into>/<sweep>.csv gets a run's row from `from` where that run has a curve there and went at
// least as far (steps) as the row it replaces; its other rows are kept. Then <sweep>_seeds.csv
// and <sweep>.md are made from that table, and the replaced rows' curves copied to
// <into>/curves/<sweep>/<run>.csv.
void merge_summary(const Sweep& sw, const std::string& from, const std::string& into);

// The aggregate over seeds of a summary table: per variant (in order of first appearance; the run
// name for a table without a variant column) the number of runs, of finished runs, their seeds,
// and for every numeric column X the mean (X_mean), sample standard deviation (X_std, empty below
// two values) and count (X_n) of the finished runs' values; an empty cell is no value.
CsvTable seed_aggregate(const CsvTable& runs);

// The active/dormant split of heads on the Bigram-Backcopy task: for each head, the mean
// attention on BOS from queries on trigger tokens (where the next token copies: active domain)
// and from all other non-BOS queries (dormant domain), on the run's probe batch.
struct HeadDomains {
  int64_t layer = 0, head = 0;
  double bos_dormant = 0, bos_active = 0;
};
std::vector<HeadDomains> backcopy_head_domains(const Config& cfg, const std::string& checkpoint);

}  // namespace sl::train
