#include "train/run_curve.h"

#include <hdf5.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>

#include "engine/autograd.h"
#include "engine/hdf5_handle.h"
#include "train/sweep.h"

namespace sl::train {

namespace {

// The log's datasets the curve reads (train/stats_rows.cpp writes them).
constexpr const char* kSink = "attn/sink_rate";               // [eps]
constexpr const char* kAlpha = "attn/alpha";                  // [L, H, K]
constexpr const char* kProxySink = "attn/proxy_sink_rate";    // [eps], unnormalised kernels
constexpr const char* kProxyAlpha = "attn/proxy_alpha";       // [L, H, K], unnormalised kernels
constexpr const char* kSlotAlpha = "attn/slot_alpha";         // [L, H]
constexpr const char* kSlotSink = "attn/slot_sink_rate";      // [eps], Sink_* of a bias slot or sink token
constexpr const char* kMassive = "hidden/massive_ratio";      // [L]
constexpr const char* kValueNorm = "attn/value_norm";         // [L, K]

// A logged dataset: its rows [row_shape...] flattened, by step (a step logged twice, as after a
// rollback, keeps its last row).
struct Series {
  std::map<int64_t, std::vector<float>> at;
  bool empty() const { return at.empty(); }
};

Series read_series(hid_t file, const std::string& name) {
  Series s;
  if (!h5::exists(file, name, name) || !h5::exists(file, name + "_step", name)) return s;
  h5::Handle vd(H5Dopen2(file, name.c_str(), H5P_DEFAULT), H5Dclose, "opening " + name);
  h5::Handle sd(H5Dopen2(file, (name + "_step").c_str(), H5P_DEFAULT), H5Dclose, "opening " + name + "_step");
  Shape shape = h5::extent(vd);
  const int64_t rows = std::min(shape.at(0), h5::extent(sd).at(0));  // a running writer may be mid-row
  if (rows == 0) return s;
  int64_t row = 1;
  for (size_t d = 1; d < shape.size(); ++d) row *= shape[d];
  std::vector<float> values((size_t)(shape[0] * row));
  std::vector<int64_t> steps((size_t)h5::extent(sd).at(0));
  h5::check(H5Dread(vd, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data()), "reading " + name);
  h5::check(H5Dread(sd, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, steps.data()), "reading " + name + "_step");
  for (int64_t r = 0; r < rows; ++r)
    s.at[steps[(size_t)r]].assign(values.begin() + r * row, values.begin() + (r + 1) * row);
  return s;
}

double mean(const float* p, int64_t n, int64_t stride = 1) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += p[i * stride];
  return n ? s / n : NAN;
}

std::string eps_name(const std::string& prefix, double e) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", e);
  return prefix + buf;
}

}  // namespace

const std::vector<double>& RunCurve::operator[](const std::string& name) const {
  for (size_t i = 0; i < names.size(); ++i)
    if (names[i] == name) return columns[i];
  throw Error("a run curve has no column '" + name + "'; it has: " + join(names, ", "));
}

bool scored_by_proxy(const Config& run) {
  return run.s("attention.kernel") != "softmax" && !run.b("attention.normalize");
}

int64_t tokens_per_step(const Config& run) {
  return run.s("model.type") == "decoder" ? run.i("train.batch_size") * run.i("model.context") : 0;
}

RunCurve read_run_curve(const Config& run, const std::string& log_path) {
  h5::silence_errors();
  h5::Handle fapl = h5::file_access(false);
  h5::Handle file(H5Fopen(log_path.c_str(), H5F_ACC_RDONLY, fapl), H5Fclose, "opening " + log_path);
  const Series loss = read_series(file, "train/loss"), val = read_series(file, "val/loss");
  Series sink = read_series(file, kSink), alpha = read_series(file, kAlpha);
  RunCurve c;
  c.sink_source = "weights";
  if (scored_by_proxy(run)) {
    const Series psink = read_series(file, kProxySink), palpha = read_series(file, kProxyAlpha);
    c.sink_source = psink.empty() ? "raw weights (unnormalised; no proxy logged)"
                    : palpha.empty() ? "proxy (alpha1: raw weights)" : "proxy";
    if (!psink.empty()) sink = psink;
    if (!palpha.empty()) alpha = palpha;
  }
  const Series massive = read_series(file, kMassive), vnorm = read_series(file, kValueNorm);
  const Series slot = read_series(file, kSlotAlpha), slot_sink = read_series(file, kSlotSink);

  std::map<int64_t, bool> steps;
  for (const Series* s : std::initializer_list<const Series*>{&sink, &val})
    for (auto& [step, _] : s->at) steps[step] = true;
  if (!loss.empty()) steps[loss.at.rbegin()->first] = true;
  for (auto& [step, _] : steps) c.steps.push_back(step);

  const std::vector<double>& eps = run.fl("stats.eps");
  const int64_t K = std::max<int64_t>(1, run.i("stats.first_k")), per_step = tokens_per_step(run);
  // One column: `value` of the row logged at each step, NaN where `s` has none.
  auto add = [&](const std::string& name, const Series& s, auto value) {
    std::vector<double> col;
    for (int64_t step : c.steps) {
      auto it = s.at.find(step);
      col.push_back(it == s.at.end() ? NAN : (double)value(it->second));
    }
    c.names.push_back(name);
    c.columns.push_back(col);
  };
  std::vector<double> tokens;
  for (int64_t step : c.steps) tokens.push_back(per_step > 0 ? (double)(step * per_step) : NAN);
  c.names.push_back("tokens");
  c.columns.push_back(tokens);
  add("train_loss", loss, [](auto& r) { return r[0]; });
  add("val_loss", val, [](auto& r) { return r[0]; });
  for (size_t e = 0; e < eps.size(); ++e)
    add(eps_name("sink@", eps[e]), sink, [e](auto& r) { return e < r.size() ? r[e] : NAN; });
  // alpha is [L, H, K]: alpha_1 is every K-th value.
  add("alpha1", alpha, [K](auto& r) { return mean(r.data(), (int64_t)r.size() / K, K); });
  add("massive_ratio", massive, [](auto& r) { return *std::max_element(r.begin(), r.end()); });
  // ||v_0|| / mean ||v_t|| of the next K - 1 positions, summed over layers: small values at the sink.
  add("v0_ratio", vnorm, [K](auto& r) {
    if (K < 2) return (double)NAN;
    double first = 0, rest = 0;
    for (int64_t l = 0; l < (int64_t)r.size() / K; ++l) {
      first += r[l * K];
      rest += mean(r.data() + l * K + 1, K - 1);
    }
    return first / rest;
  });
  add("slot_alpha", slot, [](auto& r) { return mean(r.data(), (int64_t)r.size()); });
  for (size_t e = 0; e < eps.size(); ++e)
    add(eps_name("slot_sink@", eps[e]), slot_sink, [e](auto& r) { return e < r.size() ? r[e] : NAN; });
  return c;
}

CsvTable curve_table(const RunCurve& c) {
  CsvTable t;
  t.header = {"step"};
  t.header.insert(t.header.end(), c.names.begin(), c.names.end());
  for (size_t i = 0; i < c.steps.size(); ++i) {
    std::vector<std::string> row = {std::to_string(c.steps[i])};
    for (size_t k = 0; k < c.names.size(); ++k) {
      const double v = c.columns[k][i];
      char buf[32];
      std::snprintf(buf, sizeof buf, c.names[k] == "tokens" ? "%.0f" : "%.6g", v);
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
  const std::vector<double>& eps = run.fl("stats.eps");
  for (double e : eps)
    if (std::abs(e - kOnsetEps) < 1e-9) o.sink_step = first_reach(c.steps, c[eps_name("sink@", e)], kOnsetSinkPercent);
  const int64_t T = std::min(run.i("stats.probe_len"), run.i("model.context"));
  o.alpha_step = first_reach(c.steps, c["alpha1"], kOnsetAlphaFactor * uniform_alpha1(T));
  return o;
}

}  // namespace sl::train
