// The summary table of a sweep, read from each run's log.h5.
#include <hdf5.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>

#include "engine/error.h"
#include "engine/hdf5_handle.h"
#include "train/run_dir.h"
#include "train/sweep.h"

namespace fs = std::filesystem;

namespace sl::train {

namespace {

// A logged dataset: its steps and the rows [rows, row_shape...] flattened.
struct Series {
  std::vector<int64_t> steps;
  std::vector<float> values;
  int64_t row = 0;  // floats per row
  bool empty() const { return steps.empty(); }
  const float* last() const { return values.data() + (steps.size() - 1) * row; }
};

Series read_series(hid_t file, const std::string& name) {
  Series s;
  if (!h5::exists(file, name, name) || !h5::exists(file, name + "_step", name)) return s;
  h5::Handle vd(H5Dopen2(file, name.c_str(), H5P_DEFAULT), H5Dclose, "opening " + name);
  h5::Handle sd(H5Dopen2(file, (name + "_step").c_str(), H5P_DEFAULT), H5Dclose, "opening " + name + "_step");
  Shape shape = h5::extent(vd);
  const int64_t rows = std::min(shape.at(0), h5::extent(sd).at(0));  // a running writer may be mid-row
  if (rows == 0) return s;
  s.row = 1;
  for (size_t d = 1; d < shape.size(); ++d) s.row *= shape[d];
  std::vector<float> values((size_t)(shape[0] * s.row));
  std::vector<int64_t> steps((size_t)h5::extent(sd).at(0));
  h5::check(H5Dread(vd, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data()), "reading " + name);
  h5::check(H5Dread(sd, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, steps.data()), "reading " + name + "_step");
  s.steps.assign(steps.begin(), steps.begin() + rows);
  s.values.assign(values.begin(), values.begin() + rows * s.row);
  return s;
}

std::string num(double v, const char* fmt = "%.4g") {
  if (std::isnan(v)) return "";
  char buf[32];
  std::snprintf(buf, sizeof buf, fmt, v);
  return buf;
}

double mean(const float* p, int64_t n, int64_t stride = 1) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += p[i * stride];
  return n ? s / n : NAN;
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

}  // namespace

std::string write_summary(const Sweep& sw, const std::string& exe) {
  const Config base = Config::load(sw.base, sw.common);
  const std::vector<double> eps = base.fl("stats.eps");
  const bool backcopy = [&] {
    for (auto& r : sw.runs)
      if (Config::load(sw.base, sw.overrides_of(r)).s("data.source") == "backcopy") return true;
    return false;
  }();

  std::vector<std::string> header = {"run", "status", "overrides", "steps", "train_loss", "val_loss"};
  for (double e : eps) {
    header.push_back("sink@" + num(e, "%g"));
    header.push_back("sink@" + num(e, "%g") + "_max");
  }
  for (const char* h : {"alpha1", "massive_ratio", "v0_ratio", "slot_alpha", "wall_s"}) header.push_back(h);
  if (backcopy)
    for (const char* h : {"bos_dormant", "bos_active", "heads_bos_dormant/active"}) header.push_back(h);

  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> plotted;
  for (const SweepRun& r : sw.runs) {
    std::vector<std::string> row = {r.name};
    const RunState state = run_state(r);
    const std::string exit_code = read_first_line(sw.logs() + "/" + r.name + ".exit");
    std::string status = state_name(state);
    if (state != RunState::Finished && !exit_code.empty() && exit_code != "0") status = "failed (" + exit_code + ")";
    row.push_back(status);
    row.push_back(join(r.overrides, " "));
    RunDir dir{r.dir};
    if (!fs::exists(dir.log())) {
      rows.push_back(row);
      continue;
    }
    plotted.push_back(r.dir);
    h5::silence_errors();
    h5::Handle fapl = h5::file_access(false);
    h5::Handle file(H5Fopen(dir.log().c_str(), H5F_ACC_RDONLY, fapl), H5Fclose, "opening " + dir.log());
    Series loss = read_series(file, "train/loss"), val = read_series(file, "val/loss");
    Series sink = read_series(file, "attn/sink_rate"), alpha = read_series(file, "attn/alpha");
    Series massive = read_series(file, "hidden/massive_ratio"), slot = read_series(file, "attn/slot_alpha");
    Series vnorm = read_series(file, "attn/value_norm");
    row.push_back(loss.empty() ? "0" : std::to_string(loss.steps.back()));
    row.push_back(loss.empty() ? "" : num(*loss.last()));
    row.push_back(val.empty() ? "" : num(*val.last()));
    for (size_t e = 0; e < eps.size(); ++e) {
      if (sink.empty() || (int64_t)e >= sink.row) {
        row.insert(row.end(), {"", ""});
        continue;
      }
      double mx = 0;
      for (size_t i = 0; i < sink.steps.size(); ++i) mx = std::max(mx, (double)sink.values[i * sink.row + e]);
      row.push_back(num(sink.last()[e], "%.1f"));
      row.push_back(num(mx, "%.1f"));
    }
    // alpha is [L, H, K]: alpha_1 is every K-th value; value_norm is [L, K].
    const int64_t K = std::max<int64_t>(1, base.i("stats.first_k"));
    row.push_back(alpha.empty() ? "" : num(mean(alpha.last(), alpha.row / K, K), "%.3f"));
    row.push_back(massive.empty() ? "" : num(*std::max_element(massive.last(), massive.last() + massive.row), "%.2f"));
    double v0 = NAN;
    if (!vnorm.empty() && K > 1) {
      double first = 0, rest = 0;
      for (int64_t l = 0; l < vnorm.row / K; ++l) {
        first += vnorm.last()[l * K];
        rest += mean(vnorm.last() + l * K + 1, K - 1);
      }
      v0 = first / rest;  // ||v_BOS|| / mean ||v_t|| of the next positions: small values at the sink
    }
    row.push_back(num(v0, "%.2f"));
    row.push_back(slot.empty() ? "" : num(mean(slot.last(), slot.row), "%.3f"));
    row.push_back(num(std::atof(read_first_line(sw.logs() + "/" + r.name + ".wall").c_str()), "%.0f"));
    if (backcopy) {
      std::vector<HeadDomains> heads;
      const Config cfg = Config::load(dir.config());
      const std::vector<int64_t> saved = dir.checkpoint_steps();  // an interrupted run: its newest
      if (!saved.empty() && cfg.s("data.source") == "backcopy")
        heads = backcopy_head_domains(cfg, dir.checkpoint(saved.back()));
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
    rows.push_back(row);
  }

  std::string md = "# Sweep " + sw.name + "\n\n";
  if (!sw.claim.empty()) md += "Claim: " + sw.claim + "\n\n";
  md += "Base config: `" + sw.base + "`";
  if (!sw.common.empty()) {
    md += "; for every run:";
    for (auto& c : sw.common) md += " `" + c + "`";
  }
  md += "\n\nsink@eps: Sink_1^eps in percent at the last logged step (`_max`: the largest over steps); "
        "alpha1: mean over layers and heads of the first token's importance; massive_ratio: largest over "
        "layers of ||h_0|| / median ||h_t||; v0_ratio: ||v_0|| / mean ||v_t|| of the next positions; "
        "slot_alpha: attention on the K/V-bias slot.";
  if (backcopy)
    md += " bos_dormant / bos_active: for the head with the most BOS attention from non-trigger queries, "
          "that attention and the one from trigger queries (the next token copies): a dormant head parks "
          "non-trigger queries on BOS.";
  md += "\n\n|";
  for (auto& h : header) md += " " + h + " |";
  md += "\n|";
  for (size_t i = 0; i < header.size(); ++i) md += i < 3 ? "---|" : "---:|";
  md += "\n";
  for (auto& row : rows) {
    md += "|";
    for (auto& c : row) md += " " + c + " |";
    md += "\n";
  }
  auto csv_cell = [](const std::string& s) {
    if (s.find_first_of(",\"\n") == std::string::npos) return s;
    std::string q = "\"";
    for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
    return q + "\"";
  };
  auto csv_line = [&](const std::vector<std::string>& cells) {
    std::vector<std::string> quoted;
    for (auto& c : cells) quoted.push_back(csv_cell(c));
    return join(quoted, ",") + "\n";
  };
  std::string csv = csv_line(header);
  for (auto& row : rows) csv += csv_line(row);

  fs::create_directories(sw.logs());
  const std::string script = find_plot_script(exe);
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
  std::ofstream(sw.dir + "/summary.md") << md;
  std::ofstream(sw.dir + "/summary.csv") << csv;
  return md;
}

}  // namespace sl::train
