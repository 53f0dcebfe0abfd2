#include "train/run_curve.h"

#include <hdf5.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>

#include "engine/error.h"
#include "engine/hdf5_handle.h"
#include "train/model_builder.h"
#include "train/sweep.h"

namespace sl::train {

namespace {

// A logged dataset's rows by step (a step logged twice, as after a rollback, keeps its last row).
struct Series {
  Shape row;  // the shape of one row
  std::map<int64_t, std::vector<float>> at;
};

Series read_series(hid_t file, const std::string& name) {
  Series s;
  if (!h5::exists(file, name, name) || !h5::exists(file, name + "_step", name)) return s;
  h5::Handle vd(H5Dopen2(file, name.c_str(), H5P_DEFAULT), H5Dclose, "opening " + name);
  h5::Handle sd(H5Dopen2(file, (name + "_step").c_str(), H5P_DEFAULT), H5Dclose, "opening " + name + "_step");
  Shape shape = h5::extent(vd);
  const int64_t rows = std::min(shape.at(0), h5::extent(sd).at(0));  // a running writer may be mid-row
  if (rows == 0) return s;
  s.row.assign(shape.begin() + 1, shape.end());
  int64_t width = 1;
  for (int64_t d : s.row) width *= d;
  std::vector<float> values((size_t)(shape[0] * width));
  std::vector<int64_t> steps((size_t)h5::extent(sd).at(0));
  h5::check(H5Dread(vd, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data()), "reading " + name);
  h5::check(H5Dread(sd, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, steps.data()), "reading " + name + "_step");
  for (int64_t r = 0; r < rows; ++r)
    s.at[steps[(size_t)r]].assign(values.begin() + r * width, values.begin() + (r + 1) * width);
  return s;
}

}  // namespace

const std::vector<double>& RunCurve::operator[](const std::string& name) const {
  for (size_t i = 0; i < names.size(); ++i)
    if (names[i] == name) return columns[i];
  throw Error("a run curve has no column '" + name + "'; it has: " + join(names, ", "));
}

double RunCurve::summary(size_t cell) const {
  const std::vector<double>& v = columns.at(cell + 1);
  double out = NAN;
  const bool largest = cells[cell].column->over == models::SummaryColumn::Over::Max;
  for (double x : v)
    if (!std::isnan(x) && (std::isnan(out) || !largest || x > out)) out = x;
  return out;
}

int64_t tokens_per_step(const Config& run) {
  return run.s("model.type") == "decoder" ? run.i("train.batch_size") * run.i("model.context") : 0;
}

int64_t last_logged_step(const std::string& log_path) {
  try {
    h5::silence_errors();
    h5::Handle fapl = h5::file_access(false);
    h5::Handle file(H5Fopen(log_path.c_str(), H5F_ACC_RDONLY, fapl), H5Fclose, "opening " + log_path);
    const Series loss = read_series(file, "train/loss");
    return loss.at.empty() ? -1 : loss.at.rbegin()->first;
  } catch (const Error&) {
    return -1;
  }
}

RunCurve read_run_curve(const Config& run, const std::string& log_path) {
  h5::silence_errors();
  h5::Handle fapl = h5::file_access(false);
  h5::Handle file(H5Fopen(log_path.c_str(), H5F_ACC_RDONLY, fapl), H5Fclose, "opening " + log_path);
  auto is_logged = [&](const std::string& name) { return h5::exists(file, name, name); };
  RunCurve c;
  c.cells = models::summary_cells(run.fl("stats.eps"));
  std::map<std::string, Series> series;  // each reported statistic, read once
  for (const models::SummaryCell& cell : c.cells) {
    const std::string& name = models::reported(*cell.statistic, is_logged).name;
    if (!series.count(name)) series[name] = read_series(file, name);
  }
  const models::Statistic* sink = models::find_statistic("attn/sink_rate_k");
  c.sink_source = sink && &models::reported(*sink, is_logged) != sink ? "proxy" : "weights";

  // The rows: every step of the statistics of a capture and of the evaluations; of what is logged
  // every step (the training loss), the last.
  std::map<int64_t, bool> steps;
  for (auto& [name, s] : series) {
    const models::Statistic* stat = models::find_statistic(name);
    const bool every = (stat && stat->compute) || name == "val/loss";
    for (auto it = s.at.begin(); it != s.at.end(); ++it)
      if (every || std::next(it) == s.at.end()) steps[it->first] = true;
  }
  for (auto& [step, _] : steps) c.steps.push_back(step);

  const int64_t per_step = tokens_per_step(run);
  c.names.push_back("tokens");
  c.columns.emplace_back();
  for (int64_t step : c.steps) c.columns.back().push_back(per_step > 0 ? (double)(step * per_step) : NAN);
  models::SummaryContext ctx;
  ctx.first_token = run.b("attention.sink_token") ? 1 : 0;
  ctx.first_patch = run.s("model.type") == "vit" ? vit_config(run).first_patch() : 0;
  for (const models::SummaryCell& cell : c.cells) {
    const Series& s = series[models::reported(*cell.statistic, is_logged).name];
    ctx.eps_index = cell.eps_index;
    std::vector<double> col;
    for (int64_t step : c.steps) {
      auto it = s.at.find(step);
      col.push_back(it == s.at.end() ? NAN : cell.column->of_row(it->second.data(), s.row, ctx));
    }
    c.names.push_back(cell.header);
    c.columns.push_back(col);
  }
  return c;
}

CsvTable curve_table(const RunCurve& c) {
  CsvTable t;
  std::vector<size_t> shown = {0};  // tokens
  for (size_t k = 0; k < c.cells.size(); ++k)
    if (c.cells[k].column->over == models::SummaryColumn::Over::Last) shown.push_back(k + 1);
  t.header = {"step"};
  for (size_t k : shown) t.header.push_back(c.names[k]);
  for (size_t i = 0; i < c.steps.size(); ++i) {
    std::vector<std::string> row = {std::to_string(c.steps[i])};
    for (size_t k : shown) {
      const double v = c.columns[k][i];
      char buf[32];
      std::snprintf(buf, sizeof buf, k == 0 ? "%.0f" : "%.6g", v);
      row.push_back(std::isnan(v) ? "" : buf);
    }
    t.rows.push_back(row);
  }
  return t;
}

double uniform_alpha1(int64_t T) {
  double h = 0;
  for (int64_t i = 1; i <= T; ++i) h += 1.0 / (double)i;
  return T > 0 ? h / (double)T : NAN;
}

int64_t first_reach(const std::vector<int64_t>& steps, const std::vector<double>& values, double threshold) {
  for (size_t i = 0; i < steps.size() && i < values.size(); ++i)
    if (values[i] >= threshold) return steps[i];  // false for NaN
  return -1;
}

Onset onset(const RunCurve& c, const Config& run) {
  Onset o;
  for (double e : run.fl("stats.eps")) {
    char name[32];
    std::snprintf(name, sizeof name, "sink@%g", e);
    if (std::abs(e - kOnsetEps) < 1e-9) o.sink_step = first_reach(c.steps, c[name], kOnsetSinkPercent);
  }
  const int64_t T = std::min(run.i("stats.probe_len"), run.i("model.context"));
  o.alpha_step = first_reach(c.steps, c["alpha1"], kOnsetAlphaFactor * uniform_alpha1(T));
  return o;
}

}  // namespace sl::train
