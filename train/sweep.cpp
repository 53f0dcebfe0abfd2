#include "train/sweep.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "engine/autograd.h"
#include "train/run_curve.h"
#include "train/run_dir.h"

namespace fs = std::filesystem;

namespace sl::train {

namespace {

// A YAML value as an override's right-hand side: scalars as written, sequences in flow style.
std::string value_text(const YAML::Node& n) {
  if (n.IsScalar()) return n.Scalar();
  SL_CHECK(n.IsSequence(), "sweep values must be scalars or lists, got a map");
  std::vector<std::string> items;
  for (auto item : n) items.push_back(value_text(item));
  return std::string("[").append(join(items, ", ")).append("]");
}

std::string safe_name(const std::string& s) {
  std::string out;
  for (char c : s) out += std::isalnum((unsigned char)c) || c == '.' || c == '-' || c == '_' ? c : '-';
  while (!out.empty() && out.back() == '-') out.pop_back();
  while (!out.empty() && out.front() == '-') out.erase(out.begin());
  return out;
}

struct Axis {
  std::string key;
  std::vector<std::string> values;
};

struct Variant {
  std::string name;
  std::vector<std::string> overrides;
  std::vector<std::string> seeds;  // its own `seeds:`, replacing the file's
  bool own_seeds = false;
};

// A `seeds:` list: whole numbers >= 0, each a run.
std::vector<std::string> read_seeds(const YAML::Node& n, const std::string& where) {
  SL_CHECK(n.IsSequence() && n.size() > 0, where + ": seeds: expected a non-empty list of whole numbers, e.g. [1, 2, 3]");
  std::vector<std::string> seeds;
  for (auto x : n) {
    const std::string v = x.IsScalar() ? x.Scalar() : "";
    SL_CHECK(!v.empty() && v.find_first_not_of("0123456789") == std::string::npos,
             where + ": seeds: '" + v + "' is not a whole number >= 0");
    SL_CHECK(std::find(seeds.begin(), seeds.end(), v) == seeds.end(), where + ": seeds: " + v + " is listed twice");
    seeds.push_back(v);
  }
  return seeds;
}

bool sets_key(const std::vector<std::string>& overrides, const std::string& key) {
  for (auto& o : overrides)
    if (o.rfind(key + "=", 0) == 0) return true;
  return false;
}

// The run names for `short_keys` (last key component) or full keys; unique or empty.
std::vector<std::string> run_names(const std::vector<std::pair<const Variant*, std::vector<size_t>>>& combos,
                                   const std::vector<Axis>& grid, bool short_keys) {
  std::vector<std::string> names;
  std::set<std::string> seen;
  for (auto& [variant, pick] : combos) {
    std::vector<std::string> parts;
    if (variant) parts.push_back(safe_name(variant->name));
    for (size_t a = 0; a < grid.size(); ++a) {
      std::string key = grid[a].key;
      if (short_keys) key = key.substr(key.rfind('.') + 1);
      parts.push_back(safe_name(key) + "-" + safe_name(grid[a].values[pick[a]]));
    }
    std::string name = parts.empty() ? "base" : join(parts, "_");
    if (!seen.insert(name).second) return {};
    names.push_back(name);
  }
  return names;
}

}  // namespace

std::string join(const std::vector<std::string>& parts, const std::string& sep) {
  std::string s;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i) s += sep;
    s += parts[i];
  }
  return s;
}

std::vector<std::string> Sweep::overrides_of(const SweepRun& r) const {
  std::vector<std::string> o = common;
  o.insert(o.end(), r.overrides.begin(), r.overrides.end());
  o.push_back("run.dir=" + dir);
  o.push_back("run.name=" + r.name);
  return o;
}

namespace {

// A sweep file's map with `extends: PARENT` resolved (scripts/report.py's read_spec does the same):
// the parent's keys, each replaced by this file's, except variants, which this file's add to or
// replace by name, less those it names in `exclude:`. An inherited base stays the parent's file.
YAML::Node read_sweep_doc(const std::string& path, std::vector<std::string> chain = {}) {
  // const: looking a key up in a mutable node adds it (undefined) to the map
  const YAML::Node doc = [&] {
    try {
      return YAML::LoadFile(path);
    } catch (const YAML::Exception& e) {
      throw Error("cannot read sweep file '" + path + "': " + e.what());
    }
  }();
  SL_CHECK(doc.IsMap(), path + ": a sweep file is a map with base, claim, overrides, grid, variants");
  SL_CHECK(!doc["exclude"] || doc["extends"], path + ": exclude: names variants of the sweep in extends:, and there is none");
  if (!doc["extends"]) return doc;
  chain.push_back(fs::weakly_canonical(path).string());
  const fs::path parent_path = fs::path(path).parent_path() / doc["extends"].Scalar();
  SL_CHECK(fs::exists(parent_path), path + ": extends: no sweep file '" + parent_path.string() + "'");
  SL_CHECK(std::find(chain.begin(), chain.end(), fs::weakly_canonical(parent_path).string()) == chain.end(),
           path + ": extends: '" + parent_path.string() + "' extends this file again");
  YAML::Node out = YAML::Clone(read_sweep_doc(parent_path.string(), chain));
  if (out["base"])
    out["base"] = fs::relative(parent_path.parent_path() / out["base"].Scalar(), fs::path(path).parent_path())
                      .lexically_normal()
                      .string();
  for (auto it : doc) {
    const std::string key = it.first.Scalar();
    if (key == "extends" || key == "exclude") continue;
    if (key != "variants" || !out["variants"]) {
      out[key] = it.second;
      continue;
    }
    for (auto var : it.second) out["variants"][var.first.Scalar()] = var.second;
  }
  for (auto name : doc["exclude"]) {
    SL_CHECK(out["variants"] && out["variants"][name.Scalar()],
             path + ": exclude: '" + name.Scalar() + "' is no variant of " + parent_path.string());
    out["variants"].remove(name.Scalar());
  }
  return out;
}

}  // namespace

Sweep load_sweep(const std::string& path, const std::vector<std::string>& extra) {
  const YAML::Node doc = read_sweep_doc(path);
  Sweep sw;
  sw.file = path;
  sw.name = fs::path(path).stem().string();
  std::vector<Axis> grid;
  std::vector<Variant> variants;
  std::vector<std::string> seeds;
  for (auto it : doc) {
    const std::string key = it.first.Scalar();
    const YAML::Node& v = it.second;
    if (key == "base") {
      sw.base = (fs::path(path).parent_path() / v.Scalar()).lexically_normal().string();
    } else if (key == "claim") {
      sw.claim = v.Scalar();
    } else if (key == "seeds") {
      seeds = read_seeds(v, path);
    } else if (key == "rule" || key == "columns" || key == "notes" || key == "pictures") {
      // What the report shows beside the runs (verdict rule, extra columns, notes, pictures):
      // read by scripts/report.py.
    } else if (key == "overrides") {
      SL_CHECK(v.IsSequence(), path + ": overrides: expected a list of key=value");
      for (auto o : v) sw.common.push_back(o.Scalar());
    } else if (key == "grid") {
      SL_CHECK(v.IsMap(), path + ": grid: expected a map from config key to a list of values");
      for (auto a : v) {
        Axis axis{a.first.Scalar(), {}};
        if (a.second.IsSequence())
          for (auto x : a.second) axis.values.push_back(value_text(x));
        else
          axis.values.push_back(value_text(a.second));
        SL_CHECK(!axis.values.empty(), path + ": grid axis '" + axis.key + "' has no values");
        grid.push_back(axis);
      }
    } else if (key == "variants") {
      SL_CHECK(v.IsMap(), path + ": variants: expected a map from run name to a map of overrides");
      for (auto var : v) {
        Variant variant;
        variant.name = var.first.Scalar();
        SL_CHECK(var.second.IsMap() || var.second.IsNull(),
                 path + ": variant '" + variant.name + "': expected a map of key: value");
        for (auto o : var.second) {
          if (o.first.Scalar() == "seeds") {
            variant.seeds = read_seeds(o.second, path + ": variant '" + variant.name + "'");
            variant.own_seeds = true;
          } else {
            variant.overrides.push_back(o.first.Scalar() + "=" + value_text(o.second));
          }
        }
        variants.push_back(variant);
      }
    } else {
      throw Error(path + ": unknown sweep key '" + key +
                  "'; valid: base, claim, rule, columns, notes, pictures, seeds, overrides, grid, variants, extends, "
                  "exclude");
    }
  }
  SL_CHECK(!sw.base.empty(), path + ": missing 'base: CONFIG.yaml'");
  sw.common.insert(sw.common.end(), extra.begin(), extra.end());

  // The cartesian product of the grid, crossed with the variants (grid varies fastest).
  std::vector<std::pair<const Variant*, std::vector<size_t>>> combos;
  std::vector<const Variant*> vs;
  for (auto& v : variants) vs.push_back(&v);
  if (vs.empty()) vs.push_back(nullptr);
  for (const Variant* v : vs) {
    std::vector<size_t> pick(grid.size(), 0);
    while (true) {
      combos.push_back({v, pick});
      size_t a = grid.size();
      while (a > 0 && ++pick[a - 1] == grid[a - 1].values.size()) pick[--a] = 0;
      if (a == 0) break;
    }
  }
  std::vector<std::string> names = run_names(combos, grid, true);
  if (names.empty()) names = run_names(combos, grid, false);
  SL_CHECK(!names.empty(), path + ": two runs would get the same name (repeated variant or grid value?)");

  const Config base = Config::load(sw.base, sw.common);
  sw.dir = base.s("run.dir") + "/" + sw.name;
  std::set<std::string> taken;
  for (size_t i = 0; i < combos.size(); ++i) {
    const Variant* v = combos[i].first;
    SweepRun r;
    r.variant = names[i];
    if (v) r.overrides = v->overrides;
    for (size_t a = 0; a < grid.size(); ++a)
      r.overrides.push_back(grid[a].key + "=" + grid[a].values[combos[i].second[a]]);
    const std::vector<std::string>& own = v && v->own_seeds ? v->seeds : seeds;
    for (const char* key : {"train.seed", "data.seed"})
      SL_CHECK(own.empty() || !(sets_key(sw.common, key) || sets_key(r.overrides, key)),
               path + ": run '" + r.variant + "' sets " + key + " beside `seeds:`, which sets train.seed and data.seed");
    for (size_t s = 0; s < std::max<size_t>(1, own.size()); ++s) {
      SweepRun sr = r;
      sr.name = r.variant;
      if (!own.empty()) {
        sr.seed = own[s];
        sr.name += "_s" + sr.seed;
        sr.overrides.push_back("train.seed=" + sr.seed);
        sr.overrides.push_back("data.seed=" + sr.seed);
      }
      SL_CHECK(taken.insert(sr.name).second, path + ": two runs would be named '" + sr.name + "'");
      sr.dir = sw.dir + "/" + sr.name;
      try {
        sr.steps = Config::load(sw.base, sw.overrides_of(sr)).i("train.steps");
      } catch (const Error& e) {
        throw Error(path + ": run '" + sr.name + "': " + e.what());
      }
      sw.runs.push_back(sr);
    }
  }
  return sw;
}

RunState run_state(const SweepRun& r) {
  RunDir d{r.dir};
  if (fs::exists(d.checkpoint(r.steps))) return RunState::Finished;
  // A run brought back from another machine comes without checkpoints: its log says it finished.
  if (fs::exists(d.log()) && last_logged_step(d.log()) >= r.steps) return RunState::Finished;
  auto steps = d.checkpoint_steps();
  // Resuming needs a checkpoint past step 0: a run stopped before its first step starts over.
  if (fs::exists(d.config()) && !steps.empty() && steps.back() > 0) return RunState::Interrupted;
  return RunState::Pending;
}

const char* state_name(RunState s) {
  return s == RunState::Finished ? "finished" : s == RunState::Interrupted ? "interrupted" : "pending";
}

std::vector<Host> read_hostfile(const std::string& path) {
  std::ifstream in(path);
  SL_CHECK(in.good(), "cannot read hostfile '" + path + "'");
  std::vector<Host> hosts;
  std::string line;
  while (std::getline(in, line)) {
    line = line.substr(0, line.find('#'));
    std::istringstream words(line);
    Host h;
    if (!(words >> h.name)) continue;
    for (std::string w; words >> w;)
      if (w.rfind("slots=", 0) == 0 || w.rfind("max_slots=", 0) == 0) h.slots = std::max(1, std::stoi(w.substr(w.find('=') + 1)));
    hosts.push_back(h);
  }
  SL_CHECK(!hosts.empty(), "hostfile '" + path + "' names no hosts");
  return hosts;
}

std::vector<std::string> run_command(const Sweep& sw, const SweepRun& r, RunState state, const std::string& exe,
                                     int threads, const std::string& host) {
  std::vector<std::string> cmd;
  if (!host.empty()) cmd = {"mpirun", "--host", host, "-np", "1", "-x", "OMP_NUM_THREADS=" + std::to_string(threads)};
  cmd.push_back(exe);
  cmd.push_back("train");
  if (state == RunState::Interrupted) {
    cmd.push_back("--resume");
    cmd.push_back(r.dir);
    return cmd;
  }
  cmd.push_back(sw.base);
  for (auto& o : sw.overrides_of(r)) cmd.push_back(o);
  // A run stopped before its first step left a folder behind; it starts over.
  if (fs::exists(r.dir) && !fs::is_empty(r.dir)) cmd.push_back("run.overwrite=true");
  return cmd;
}

std::string slurm_script(const Sweep& sw, const std::string& exe, int threads, const std::vector<std::string>& extra) {
  std::string args;
  for (auto& e : extra) args += " '" + e + "'";
  std::ostringstream s;
  s << "#!/bin/bash\n"
    << "# Slurm array for sweep " << sw.name << ": one task per run (" << sw.runs.size() << " runs).\n"
    << "# Submit from the directory the sweep was written in: sbatch " << sw.dir << "/sweep.slurm\n"
    << "# Each task runs `sinklab sweep FILE --only INDEX`, which skips a finished run and resumes an\n"
    << "# interrupted one, so resubmitting the script continues the sweep. Afterwards:\n"
    << "#   " << exe << " sweep " << sw.file << " --summary\n"
    << "#SBATCH --job-name=sweep-" << sw.name << "\n"
    << "#SBATCH --array=0-" << sw.runs.size() - 1 << "\n"
    << "#SBATCH --ntasks=1\n"
    << "#SBATCH --cpus-per-task=" << threads << "\n"
    << "#SBATCH --output=" << sw.logs() << "/slurm-%a.out\n"
    << "export OMP_NUM_THREADS=${SLURM_CPUS_PER_TASK:-" << threads << "}\n"
    << "# task index -> run:";
  for (size_t i = 0; i < sw.runs.size(); ++i) s << (i % 4 ? "  " : "\n#  ") << i << "=" << sw.runs[i].name;
  s << "\nexec '" << exe << "' sweep '" << sw.file << "' --only \"$SLURM_ARRAY_TASK_ID\"" << args << "\n";
  return s.str();
}

}  // namespace sl::train
