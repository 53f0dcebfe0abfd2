// Where a statistics step's own work goes at `sinklab bench`'s calibrated shape
// (train/bench_shapes.h) with the default source: the training forward's capture of
// stats.probe_batch sequences. Each piece is timed hot, the fastest of N repetitions, on one
// capture of an untrained model: StatsInput's shared reductions, then each logged statistic, then
// the log's flush. First, what the capture itself adds to a training forward and its backward.
// usage: bench_stats [N, default 50] [f32|bf16, default f32]   (threads: OMP_NUM_THREADS)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <unistd.h>

#include "engine/h5log.h"
#include "engine/precision.h"
#include "engine/rng.h"
#include "models/statistics.h"
#include "models/stats_input.h"
#include "train/bench_shapes.h"
#include "train/config.h"
#include "train/model_builder.h"
#include "train/stats_rows.h"

using namespace sl;

namespace {

// The fastest of n runs of f, in ms.
double fastest_ms(int n, const std::function<void()>& f) {
  double best = 1e30;
  for (int i = 0; i < n; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    best = std::min(best, std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  const int n = argc > 1 ? std::atoi(argv[1]) : 50;
  const std::string dtype = argc > 2 ? argv[2] : "f32";
  set_matmul_precision(parse_matmul_precision(dtype));
  const train::BenchShape shape = train::bench_shape("calibrated");
  const Config cfg = train::bench_config(shape, "softmax", dtype, 1);
  const int64_t B = shape.batch, T = shape.seq, V = shape.vocab;
  ParamStore ps;
  models::Decoder model(train::decoder_config(cfg, V), ps);
  Rng rng(1);
  ps.finalize(rng);
  std::vector<int32_t> tokens(B * T), targets(B * T);
  for (auto& t : tokens) t = (int32_t)rng.uniform_int(V);
  for (auto& t : targets) t = (int32_t)rng.uniform_int(V);
  const models::CaptureRequest request{cfg.i("stats.probe_batch"), cfg.i("stats.probe_len")};
  const models::ModelOutput out = model.loss(tokens, B, T, targets, -1, 0.f, request);
  const models::Capture& cap = *out.capture;
  models::StatsOptions opt;
  opt.first_k = cfg.i("stats.first_k"), opt.eps = cfg.fl("stats.eps");

  const double input_ms = fastest_ms(n, [&] { models::StatsInput in(cap.attn, cap.hidden, cap.moe, opt); });
  const models::StatsInput in(cap.attn, cap.hidden, cap.moe, opt);

  // What a statistics step adds to the step itself: a training forward and its backward, without
  // a capture and with one (the statistics' own work not included), alternated, so that a
  // drifting host weighs on both alike.
  auto step_ms = [&](bool backward) {
    double best[2] = {1e30, 1e30};
    for (int i = 0; i < 2 * std::max(n / 5, 3); ++i)
      best[i % 2] = std::min(best[i % 2], fastest_ms(1, [&] {
        // the capture dropped before the backward, as a training step drops it
        const Tensor loss = model.loss(tokens, B, T, targets, -1, 0.f, i % 2 ? std::optional(request) : std::nullopt).loss;
        if (backward) loss.backward();
      }));
    return std::pair(best[0], best[1]);
  };
  const auto [fwd, fwd_cap] = step_ms(false);
  const auto [both, both_cap] = step_ms(true);
  std::printf("the training step, fastest of %d: forward %.3f ms, with the capture %.3f ms (%+.3f); forward + "
              "backward %.3f ms, with the capture %.3f ms (%+.3f)\n",
              std::max(n / 5, 3), fwd, fwd_cap, fwd_cap - fwd, both, both_cap, both_cap - both);
  const double rows_ms = fastest_ms(n, [&] { train::statistics_rows(in); });
  std::printf("statistics of %lld layers, %s products, fastest of %d: StatsInput %.3f ms + statistics_rows %.3f ms = %.3f ms\n",
              (long long)cap.attn.size(), dtype.c_str(), n, input_ms, rows_ms, input_ms + rows_ms);

  // StatsInput's reductions, summed over the layers
  std::vector<std::pair<std::string, std::function<void(size_t)>>> pieces = {
      {"importance", [&](size_t l) { models::importance(in.weights(l), in.slots(), in.queries()); }},
      {"row_sums", [&](size_t l) { models::row_sums(in.weights(l), in.slots(), cap.attn[l].mask); }},
      {"value_output_norms", [&](size_t l) { models::value_output_norms(cap.attn[l].values, cap.attn[l].out_proj); }},
      {"output_contributions",
       [&](size_t l) { models::output_contributions(in.weights(l), in.value_output_norms(l), in.slots()); }},
      {"row_norms", [&](size_t l) { models::row_norms(cap.hidden[l]); }},
      {"magnitudes", [&](size_t l) { models::magnitudes(cap.hidden[l]); }},
  };
  std::printf("\nStatsInput's reductions (all layers):\n");
  for (auto& [name, f] : pieces) {
    double ms = 0;
    for (size_t l = 0; l < cap.attn.size(); ++l) ms += fastest_ms(n, [&] { f(l); });
    std::printf("  %-22s %.3f ms\n", name.c_str(), ms);
  }

  std::vector<std::pair<double, std::string>> each;
  for (const models::Statistic& s : models::statistics())
    if (s.compute && (!s.logged || s.logged(in)))
      each.push_back({fastest_ms(n, [&] { models::compute(s, in); }), s.name});
  std::sort(each.rbegin(), each.rend());
  std::printf("\nthe %zu logged statistics, costliest first:\n", each.size());
  for (auto& [ms, name] : each) std::printf("  %-32s %.3f ms\n", name.c_str(), ms);

  // A run's log: stats.flush_every steps of rows appended, then a flush.
  const std::vector<train::LogRow> rows = train::statistics_rows(in);
  const std::string path = "/tmp/bench_stats_" + std::to_string(::getpid()) + ".h5";
  {
    H5Log log(path);
    int64_t step = 0;
    const int64_t every = cfg.i("stats.flush_every");
    const double flush_ms = fastest_ms(std::max(n / 5, 3), [&] {
      for (int64_t k = 0; k < every; ++k, ++step)
        for (const auto& r : rows) log.append(r.name, step, r.values.data(), r.shape);
      log.flush();
    });
    std::printf("\nthe log: %lld steps of %zu rows appended and flushed, %.3f ms (%.3f ms a statistics step)\n",
                (long long)every, rows.size(), flush_ms, flush_ms / every);
  }
  std::remove(path.c_str());
  return 0;
}
