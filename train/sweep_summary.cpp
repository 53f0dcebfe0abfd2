// The summary of a sweep: one row per run from its log.h5 (runs/<sweep>/summary.csv), the
// aggregate over the seeds of each variant (summary_seeds.csv), each run's curve
// (curves/<run>.csv) and summary.md with both tables.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>

#include "engine/error.h"
#include "engine/hdf5_handle.h"
#include "models/statistics.h"
#include "train/run_curve.h"
#include "train/run_dir.h"
#include "train/sweep.h"

namespace fs = std::filesystem;

namespace sl::train {

namespace {

std::string num(double v, const char* fmt) {
  if (std::isnan(v)) return "";
  char buf[48];
  std::snprintf(buf, sizeof buf, fmt, v);
  return buf;
}

// The summary's columns that are text; every other column holds a number (or is empty).
bool text_column(const std::string& name) {
  for (const char* t : {"run", "variant", "seed", "status", "overrides", "sink_source", "heads_bos_dormant/active"})
    if (name == t) return true;
  return false;
}

double number(const std::string& cell) {
  if (cell.empty()) return NAN;
  char* end = nullptr;
  const double v = std::strtod(cell.c_str(), &end);
  return end && *end == '\0' ? v : NAN;
}

std::string read_first_line(const std::string& path) {
  std::ifstream in(path);
  std::string l;
  std::getline(in, l);
  return l;
}

std::string find_plot_script(const std::string& exe) {
  for (fs::path p : {fs::path(exe).parent_path() / "../scripts/plot_sinks.py", fs::path("scripts/plot_sinks.py")})
    if (fs::exists(p)) return p.lexically_normal().string();
  return "";
}

void write_file(const std::string& path, const std::string& text) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  SL_CHECK(out.good(), "cannot write '" + path + "'");
}

// A Markdown table of `t`'s columns that are not empty in every row.
std::string markdown_table(const CsvTable& t) {
  std::vector<size_t> cols;
  for (size_t c = 0; c < t.header.size(); ++c)
    for (auto& r : t.rows)
      if (!r[c].empty()) {
        cols.push_back(c);
        break;
      }
  std::string md = "|";
  for (size_t c : cols) md += " " + t.header[c] + " |";
  md += "\n|";
  for (size_t c : cols) md += text_column(t.header[c]) ? "---|" : "---:|";
  md += "\n";
  for (auto& r : t.rows) {
    md += "|";
    for (size_t c : cols) md += " " + r[c] + " |";
    md += "\n";
  }
  return md;
}

// `row` of `from` laid out in the columns of `header` (columns `from` lacks stay empty).
std::vector<std::string> relaid(const CsvTable& from, size_t row, const std::vector<std::string>& header) {
  std::vector<std::string> out;
  for (auto& h : header) out.push_back(from.cell(row, h));
  return out;
}

// The committed table `old` updated with the rows of `now`: a run's row replaces its old one
// where it was logged (`logged`) and has gone at least as far (steps); old rows of runs not in
// `now` are kept after the others. `replaced[i]`: row i of `now` is in the result.
CsvTable merged(const CsvTable& old, const CsvTable& now, const std::vector<bool>& logged, std::vector<bool>& replaced) {
  CsvTable out{now.header, {}};
  std::map<std::string, size_t> old_row;
  for (size_t r = 0; r < old.rows.size(); ++r) old_row[old.cell(r, "run")] = r;
  replaced.assign(now.rows.size(), false);
  for (size_t r = 0; r < now.rows.size(); ++r) {
    auto it = old_row.find(now.cell(r, "run"));
    const double old_steps = it == old_row.end() ? NAN : number(old.cell(it->second, "steps"));
    const bool keep_old = it != old_row.end() &&
                          !(logged[r] && (std::isnan(old_steps) || number(now.cell(r, "steps")) >= old_steps));
    if (keep_old) {
      out.rows.push_back(relaid(old, it->second, out.header));
    } else {
      out.rows.push_back(now.rows[r]);
      replaced[r] = true;
    }
    if (it != old_row.end()) old_row.erase(it);
  }
  for (size_t r = 0; r < old.rows.size(); ++r)
    if (old_row.count(old.cell(r, "run"))) out.rows.push_back(relaid(old, r, out.header));
  return out;
}

// summary.md: the claim, the runs, and the seed aggregate where a variant has several seeds.
std::string markdown(const Sweep& sw, const CsvTable& runs, const CsvTable& agg) {
  std::string md = "# Sweep " + sw.name + "\n\n";
  if (!sw.claim.empty()) md += "Claim: " + sw.claim + "\n\n";
  md += "Base config: `" + sw.base + "`";
  if (!sw.common.empty()) {
    md += "; for every run:";
    for (auto& c : sw.common) md += " `" + c + "`";
  }
  md += "\n\nsteps: the last logged; tokens: seen by then (steps x batch x context)";
  for (const models::Statistic& st : models::statistics())
    for (const models::SummaryColumn& col : st.summary) md += "; " + col.header + ": " + col.doc;
  md += "; sink_source: the weights sink@ and alpha1 read (proxy |w| / sum |w| where logged, for kernels whose "
        "weights are no distribution); onset_sink: the first step (and tokens seen) with Sink_1^0.3 >= 10 %; "
        "onset_alpha: the first with alpha1 >= twice uniform causal attention's.";
  if (runs.column("bos_dormant") >= 0)
    md += " bos_dormant / bos_active: for the head with the most BOS attention from non-trigger queries, "
          "that attention and the one from trigger queries (the next token copies): a dormant head parks "
          "non-trigger queries on BOS.";
  md += "\n\n" + markdown_table(runs);
  bool seeded = false;
  for (size_t r = 0; r < agg.rows.size(); ++r) seeded |= agg.cell(r, "runs") != "1";
  if (!seeded) return md;
  CsvTable shown;
  shown.header = {"variant", "finished/runs"};
  std::vector<std::string> cols;
  for (auto& h : runs.header)
    if (h == "val_loss" || h == "alpha1" || h == "slot_alpha" || h == "onset_sink_step" || h == "onset_alpha_step" ||
        (h.rfind("sink@", 0) == 0 && h.find("_max") == std::string::npos))
      cols.push_back(h);
  shown.header.insert(shown.header.end(), cols.begin(), cols.end());
  for (size_t r = 0; r < agg.rows.size(); ++r) {
    std::vector<std::string> row = {agg.cell(r, "variant"), agg.cell(r, "finished") + "/" + agg.cell(r, "runs")};
    for (auto& c : cols) {
      const std::string m = agg.cell(r, c + "_mean"), sd = agg.cell(r, c + "_std"), n = agg.cell(r, c + "_n");
      row.push_back(m.empty() ? "" : m + (sd.empty() ? "" : " ± " + sd) + " (" + n + ")");
    }
    shown.rows.push_back(row);
  }
  return md + "\nOver the seeds of each variant (finished runs only): mean ± standard deviation (n runs with a "
              "value; an onset never reached has none).\n\n" + markdown_table(shown);
}

}  // namespace

CsvTable seed_aggregate(const CsvTable& runs) {
  std::vector<std::string> numeric;
  for (auto& h : runs.header)
    if (!text_column(h)) numeric.push_back(h);
  CsvTable agg;
  agg.header = {"variant", "runs", "finished", "seeds"};
  for (auto& h : numeric)
    for (const char* s : {"_mean", "_std", "_n"}) agg.header.push_back(h + s);
  std::vector<std::string> order;
  std::map<std::string, std::vector<size_t>> members;
  for (size_t r = 0; r < runs.rows.size(); ++r) {
    std::string v = runs.cell(r, "variant");
    if (v.empty()) v = runs.cell(r, "run");  // a summary from before the seeds axis
    if (!members.count(v)) order.push_back(v);
    members[v].push_back(r);
  }
  for (auto& v : order) {
    std::vector<size_t> done;
    std::vector<std::string> seeds;
    for (size_t r : members[v])
      if (runs.cell(r, "status") == "finished") {
        done.push_back(r);
        if (!runs.cell(r, "seed").empty()) seeds.push_back(runs.cell(r, "seed"));
      }
    std::vector<std::string> row = {v, std::to_string(members[v].size()), std::to_string(done.size()), join(seeds, " ")};
    for (auto& h : numeric) {
      std::vector<double> x;
      for (size_t r : done)
        if (!std::isnan(number(runs.cell(r, h)))) x.push_back(number(runs.cell(r, h)));
      double m = 0, ss = 0;
      for (double a : x) m += a;
      m /= (double)x.size();
      for (double a : x) ss += (a - m) * (a - m);
      row.push_back(x.empty() ? "" : num(m, "%.6g"));
      row.push_back(x.size() < 2 ? "" : num(std::sqrt(ss / (double)(x.size() - 1)), "%.6g"));
      row.push_back(std::to_string(x.size()));
    }
    agg.rows.push_back(row);
  }
  return agg;
}

std::string write_summary(const Sweep& sw, const std::string& exe) {
  const Config base = Config::load(sw.base, sw.common);
  const std::vector<double> eps = base.fl("stats.eps");
  const bool backcopy = [&] {
    for (auto& r : sw.runs)
      if (Config::load(sw.base, sw.overrides_of(r)).s("data.source") == "backcopy") return true;
    return false;
  }();

  const std::vector<models::SummaryCell> cells = models::summary_cells(eps);
  CsvTable table;
  auto& header = table.header;
  header = {"run", "variant", "seed", "status", "overrides", "steps", "tokens"};
  for (auto& cell : cells) header.push_back(cell.header);
  for (const char* h : {"sink_source", "onset_sink_step", "onset_sink_tokens", "onset_alpha_step", "onset_alpha_tokens",
                        "wall_s"})
    header.push_back(h);
  if (backcopy)
    for (const char* h : {"bos_dormant", "bos_active", "heads_bos_dormant/active"}) header.push_back(h);

  std::vector<bool> logged;
  std::vector<CsvTable> curves;
  std::vector<std::string> plotted;
  for (const SweepRun& r : sw.runs) {
    std::vector<std::string> row = {r.name, r.variant, r.seed};
    const RunState state = run_state(r);
    const std::string exit_code = read_first_line(sw.logs() + "/" + r.name + ".exit");
    std::string status = state_name(state);
    if (state != RunState::Finished && !exit_code.empty() && exit_code != "0") status = "failed (" + exit_code + ")";
    row.push_back(status);
    row.push_back(join(r.overrides, " "));
    RunDir dir{r.dir};
    logged.push_back(fs::exists(dir.log()));
    curves.emplace_back();
    if (!logged.back()) {
      row.resize(header.size());
      table.rows.push_back(row);
      continue;
    }
    plotted.push_back(r.dir);
    const Config cfg = Config::load(sw.base, sw.overrides_of(r));
    const RunCurve c = read_run_curve(cfg, dir.log());
    curves.back() = curve_table(c);
    const double steps = c.steps.empty() ? 0 : (double)c.steps.back();
    const double per_step = (double)tokens_per_step(cfg);
    auto tokens = [&](double step) { return per_step > 0 && step >= 0 ? num(step * per_step, "%.0f") : ""; };
    row.push_back(num(steps, "%.0f"));
    row.push_back(tokens(steps));
    for (size_t k = 0; k < cells.size(); ++k) row.push_back(num(c.summary(k), cells[k].column->format.c_str()));
    row.push_back(c.sink_source);
    const Onset o = onset(c, cfg);
    for (int64_t step : {o.sink_step, o.alpha_step}) {
      row.push_back(step < 0 ? "" : std::to_string(step));
      row.push_back(step < 0 ? "" : tokens((double)step));
    }
    row.push_back(num(std::atof(read_first_line(sw.logs() + "/" + r.name + ".wall").c_str()), "%.0f"));
    if (backcopy) {
      std::vector<HeadDomains> heads;
      const std::vector<int64_t> saved = dir.checkpoint_steps();  // an interrupted run: its newest
      if (!saved.empty() && cfg.s("data.source") == "backcopy")
        heads = backcopy_head_domains(Config::load(dir.config()), dir.checkpoint(saved.back()));
      auto top = std::max_element(heads.begin(), heads.end(),
                                  [](auto& a, auto& b) { return a.bos_dormant < b.bos_dormant; });
      row.push_back(heads.empty() ? "" : num(top->bos_dormant, "%.3f"));
      row.push_back(heads.empty() ? "" : num(top->bos_active, "%.3f"));
      std::vector<std::string> per;
      for (auto& h : heads) {
        char cell[64];
        std::snprintf(cell, sizeof cell, "L%lldH%lld:%.2f/%.2f", (long long)h.layer, (long long)h.head, h.bos_dormant,
                      h.bos_active);
        per.push_back(cell);
      }
      row.push_back(join(per, " "));
    }
    row.resize(header.size());
    table.rows.push_back(row);
  }

  const CsvTable agg = seed_aggregate(table);
  std::string md = markdown(sw, table, agg);
  const std::string script = find_plot_script(exe);
  fs::create_directories(sw.logs());
  if (!plotted.empty() && !script.empty()) {
    std::string cmd = "/usr/bin/python3 '" + script + "'";
    for (auto& p : plotted) cmd += " '" + p + "'";
    cmd += " --out '" + sw.dir + "' > '" + sw.logs() + "/plot.log' 2>&1";
    if (std::system(cmd.c_str()) == 0)
      md += "\nPlots: `sink_rate.png` (Sink_1 and loss vs step, every run), `alpha1_heatmap.png`, "
            "`hidden_norms.png` (first run) in " + sw.dir + "/.\n";
    else
      std::fprintf(stderr, "warning: plotting failed (see %s/plot.log); the tables are written\n", sw.logs().c_str());
  } else if (script.empty()) {
    std::fprintf(stderr, "warning: scripts/plot_sinks.py not found; no plots\n");
  }
  write_file(sw.dir + "/summary.md", md);
  write_file(sw.dir + "/summary.csv", to_csv(table));
  write_file(sw.dir + "/summary_seeds.csv", to_csv(agg));
  for (size_t r = 0; r < sw.runs.size(); ++r)
    if (logged[r]) write_file(sw.dir + "/curves/" + sw.runs[r].name + ".csv", to_csv(curves[r]));
  return md;
}

void merge_summary(const Sweep& sw, const std::string& from, const std::string& into) {
  const CsvTable now = read_csv(from + "/summary.csv");
  SL_CHECK(now.column("run") >= 0, "'" + from + "/summary.csv' is missing or has no run column (a sweep's summary?)");
  std::vector<bool> logged;
  for (size_t r = 0; r < now.rows.size(); ++r) logged.push_back(fs::exists(from + "/curves/" + now.cell(r, "run") + ".csv"));
  std::vector<bool> replaced;
  const CsvTable all = merged(read_csv(into + "/" + sw.name + ".csv"), now, logged, replaced);
  const CsvTable agg = seed_aggregate(all);
  write_file(into + "/" + sw.name + ".csv", to_csv(all));
  write_file(into + "/" + sw.name + "_seeds.csv", to_csv(agg));
  write_file(into + "/" + sw.name + ".md", markdown(sw, all, agg));
  for (size_t r = 0; r < now.rows.size(); ++r)
    if (logged[r] && replaced[r]) {
      const std::string run = now.cell(r, "run");
      fs::create_directories(into + "/curves/" + sw.name);
      fs::copy_file(from + "/curves/" + run + ".csv", into + "/curves/" + sw.name + "/" + run + ".csv",
                    fs::copy_options::overwrite_existing);
    }
}

}  // namespace sl::train
