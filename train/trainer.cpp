#include "train/trainer.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <functional>
#include <memory>
#include <optional>
#include <set>

#include "data/files.h"
#include "engine/h5log.h"
#include "engine/ops.h"
#include "engine/optim.h"
#include "engine/schedule.h"
#include "engine/threads.h"
#include "train/checkpointing.h"
#include "train/distributed.h"
#include "train/schema.h"
#include "train/task.h"

namespace sl::train {

static volatile std::sig_atomic_t g_stop_signal = 0;
static void on_stop_signal(int sig) { g_stop_signal = sig; }

// Parameter groups for weight decay. Models declare matrices with decay and norms/biases
// without; the config decides norms, biases and embeddings.
static void assign_weight_decay(ParamStore& ps, const Config& cfg) {
  for (auto& p : ps.params()) {
    const std::string& n = p.name;
    bool is_embedding = n == "wte" || n == "wpe" || n == "sink_token" || n == "cls_token" || n == "registers" ||
                        n == "pos_embed";
    if (n.find("norm") != std::string::npos) p.weight_decay = cfg.b("train.decay_norms");
    else if (is_embedding) p.weight_decay = cfg.b("train.decay_embeddings");
    else if (!p.weight_decay) p.weight_decay = cfg.b("train.decay_biases");
  }
}

static std::unique_ptr<Optimizer> make_optimizer(ParamStore& ps, const Config& cfg) {
  if (cfg.s("train.optimizer") == "sgd")
    return std::make_unique<SGD>(ps, SGDConfig{(float)cfg.f("train.momentum"), (float)cfg.f("train.weight_decay")});
  return std::make_unique<AdamW>(ps, AdamWConfig{(float)cfg.f("train.beta1"), (float)cfg.f("train.beta2"),
                                                 (float)cfg.f("train.eps"), (float)cfg.f("train.weight_decay")});
}

static LrSchedule make_schedule(const Config& cfg) {
  LrSchedule s;
  std::string k = cfg.s("train.schedule");
  s.kind = k == "cosine" ? LrSchedule::Cosine : k == "linear" ? LrSchedule::Linear : LrSchedule::Constant;
  s.peak = (float)cfg.f("train.lr");
  s.warmup = cfg.i("train.warmup");
  s.total = cfg.i("train.steps");
  s.min_ratio = (float)cfg.f("train.min_lr_ratio");
  return s;
}

// Checkpoints at every `every` steps, at the end, and (log-spaced) at 1, 2, 4, 8, ... where sinks form.
static bool is_checkpoint_step(int64_t step, const Config& cfg) {
  int64_t every = cfg.i("train.checkpoint_every");
  if (step == cfg.i("train.steps")) return true;
  if (every > 0 && step % every == 0) return true;
  return cfg.b("train.checkpoint_log_spaced") && (step & (step - 1)) == 0;
}

static std::string format_duration(double s) {
  char buf[32];
  if (s >= 3600) std::snprintf(buf, sizeof buf, "%dh%02dm", (int)(s / 3600), (int)std::fmod(s / 60, 60));
  else std::snprintf(buf, sizeof buf, "%dm%02ds", (int)(s / 60), (int)std::fmod(s, 60));
  return buf;
}

// The multi-index of element `flat` in a row-major array of `shape`, as "[i, j, k]" (the README
// documents the axes of each statistic: layer, head, position...).
static std::string index_str(int64_t flat, const Shape& shape) {
  std::vector<int64_t> idx(shape.size());
  for (size_t d = shape.size(); d-- > 0;) idx[d] = flat % shape[d], flat /= shape[d];
  std::string s = "[";
  for (size_t d = 0; d < idx.size(); ++d) s += (d ? ", " : "") + std::to_string(idx[d]);
  return s + "]";
}

// The first parameter whose values (or, with `grads`, gradients) are not finite, "" if none.
static std::string first_nonfinite(ParamStore& ps, bool grads) {
  for (auto& p : ps.params()) {
    const Tensor& t = grads ? p.value.grad() : p.value;
    if (t.defined() && !std::all_of(t.data(), t.data() + t.numel(), [](float v) { return std::isfinite(v); }))
      return p.name;
  }
  return "";
}

// The run's log; on resume, a log.h5 that no longer opens (e.g. truncated by a power loss) is
// moved aside and a new one started, so that the run itself is not lost.
static std::unique_ptr<H5Log> open_log(const RunDir& dir, bool resume) {
  if (!resume) return std::make_unique<H5Log>(dir.log());
  try {
    return std::make_unique<H5Log>(dir.log());
  } catch (const Error& e) {
    const std::string aside = dir.log() + ".unreadable";
    std::fprintf(stderr, "warning: %s; moved it to %s and starting a new log\n", e.what(), aside.c_str());
    SL_CHECK(std::rename(dir.log().c_str(), aside.c_str()) == 0, "cannot move " + dir.log() + " aside");
    return std::make_unique<H5Log>(dir.log());
  }
}

TrainSummary train(const Config& cfg, const RunDir& dir, bool resume, int64_t stop_after) {
  // From the start, so that a signal during setup also ends with a checkpoint, not a kill.
  std::signal(SIGINT, on_stop_signal);
  std::signal(SIGTERM, on_stop_signal);
  set_num_threads((int)cfg.i("train.threads"));
  pin_threads(cfg.b("train.pin_threads"));
  ParamStore ps;
  std::unique_ptr<Task> task = make_task(cfg, ps);
  assign_weight_decay(ps, cfg);
  std::unique_ptr<Optimizer> opt = make_optimizer(ps, cfg);
  const LrSchedule sched = make_schedule(cfg);

  // Data parallelism: the global batch's micro-batches are dealt round-robin to the ranks, whose
  // gradients are summed; every rank draws every micro-batch so that the data order (and so the
  // curve) is that of one process with the same global batch and micro-batch.
  const int world = dist::size(), rank = dist::rank();
  const bool root = rank == 0;
  const int64_t steps = cfg.i("train.steps"), batch = cfg.i("train.batch_size");
  const int64_t micro = cfg.i("train.micro_batch") > 0 ? cfg.i("train.micro_batch") : batch / world;
  const int64_t accum = batch / std::max<int64_t>(micro, 1);
  SL_CHECK(micro > 0 && batch % micro == 0 && accum % world == 0,
           "train.batch_size " + std::to_string(batch) + " must split into micro-batches (train.micro_batch " +
               std::to_string(micro) + ") that divide evenly among " + std::to_string(world) + " processes");
  const int64_t bucket_bytes = cfg.i("train.allreduce_bucket_kb") * 1024;
  const int64_t log_every = std::max<int64_t>(1, cfg.i("train.log_every"));
  // Evaluation, statistics, logs and checkpoints belong to rank 0.
  const int64_t eval_every = root ? cfg.i("train.eval_every") : 0, stats_every = root ? cfg.i("stats.every") : 0;
  const int64_t flush_every = std::max<int64_t>(1, cfg.i("stats.flush_every"));
  const float clip = (float)cfg.f("train.grad_clip");
  const bool rollback_on_nan = cfg.s("train.on_nan") == "rollback";
  SL_CHECK(!rollback_on_nan || world == 1, "train.on_nan=rollback is for single-process runs; use stop under mpirun");
  const double rollback_factor = cfg.f("train.rollback_lr_factor");
  constexpr int64_t kMaxRollbacks = 20;  // then the lr is at most factor^20 of the schedule's: give up

  Restored restored;
  if (resume) restored = restore_latest(dir, ps, *opt, *task);
  const int64_t start = restored.step;
  int64_t rollbacks = restored.rollbacks, last_restored = -1;
  if (!resume && root) data::write_file_atomic(dir.config(), cfg.to_yaml());
  // Other ranks log into a scratch file nobody reads, so the loop below has no rank branches.
  const std::string scratch = "/tmp/sinklab-rank" + std::to_string(rank) + "-" + std::to_string(::getpid()) + ".h5";
  std::unique_ptr<H5Log> log_file = root ? open_log(dir, resume) : std::make_unique<H5Log>(scratch);
  H5Log& log = *log_file;
  // Rows past the checkpoint belong to the interrupted future; step 0's rows are logged again.
  log.truncate_after(start > 0 ? start : -1);
  log.set_attr("config", cfg.to_yaml());
  // A failed checkpoint or log write (a full disk...) stops the run with the reason; what was
  // written before stays intact (both are replaced atomically), so the run can be resumed.
  auto stop_on_write_error = [&](int64_t step, const std::function<void()>& write) {
    try {
      write();
    } catch (const Error& e) {
      throw Error(std::string(e.what()) + "; the run stopped at step " + std::to_string(step) +
                  ", earlier checkpoints and the log as last flushed are intact; resume with: sinklab train "
                  "--resume " + dir.path);
    }
  };
  auto checkpoint = [&](int64_t step) {
    if (root) stop_on_write_error(step, [&] { save_run_checkpoint(dir, step, rollbacks, ps, *opt, *task, cfg); });
  };
  auto flush_log = [&](int64_t step) { stop_on_write_error(step, [&] { log.flush(); }); };
  if (start == 0) checkpoint(0);

  const bool interactive = isatty(fileno(stdout));
  if (root)
    std::printf("run %s: %lld parameters, %lld steps of %lld x %lld tokens%s\n", dir.path.c_str(),
              (long long)ps.count(), (long long)steps, (long long)batch, (long long)task->tokens_per_sequence(),
              start ? (" (resuming at step " + std::to_string(start) + ")").c_str() : "");
  // stats.source: the fixed probe's forward after the update, and/or the training forward's own.
  const std::string stats_source = sl::stats_source(cfg);
  if (root && stats_every > 0)
    std::printf("attention statistics every %lld step%s from %s (stats.source = %s)\n", (long long)stats_every,
                stats_every == 1 ? "" : "s",
                stats_source == "train"   ? "the training forward's leading block"
                : stats_source == "probe" ? "a forward of the fixed probe batch after the update"
                                          : "the probe batch and the training forward",
                cfg.s("stats.source").c_str());
  if (root && world > 1) {
    const int64_t buckets = dist::GradientReducer(ps, bucket_bytes).buckets();
    std::printf("data parallel over %d processes: gradients summed in %lld bucket%s during the backward\n", world,
                (long long)buckets, buckets == 1 ? "" : "s");
  }

  TrainSummary sum;
  double last_val = NAN, tokens_since = 0;
  auto t_begin = std::chrono::steady_clock::now(), t_last = t_begin;
  int64_t timed_from = start;
  auto log_scalar = [&](const char* name, int64_t step, float v) { log.append(name, step, &v, {}); };
  const bool probe_rows = stats_source != "train", train_rows = stats_source != "probe";
  const std::string train_prefix = stats_source == "both" ? "train_batch/" : "";
  if (start == 0 && stats_every > 0 && probe_rows)
    for (const LogRow& r : task->probe_stats()) log.append(r.name, 0, r.values.data(), r.shape);

  for (int64_t step = start + 1; step <= steps; ++step) {
    const float lr = sched.at(step - 1) * (float)std::pow(rollback_factor, (double)rollbacks);
    ps.zero_grad();
    const bool stats_due = stats_every > 0 && step % stats_every == 0;
    if (stats_due && train_rows) task->capture_train_stats();  // by the first micro-batch this rank trains
    double loss = 0;
    std::string fault;  // what went non-finite, named by step, layer and tensor; nothing is logged then
    const std::string at_step = " at step " + std::to_string(step);
    auto in_forward = [&] {
      std::string where = task->diagnose_nonfinite();
      return where.empty() ? "" : ", first in " + where + " (forward of the training batch)";
    };
    // Under mpirun, gradients are summed across processes during the backward of the last
    // micro-batch this rank trains (the earlier ones accumulate locally).
    std::optional<dist::GradientReducer> reducer;
    if (world > 1) reducer.emplace(ps, bucket_bytes);
    for (int64_t m = 0; m < accum && fault.empty(); ++m) {
      if (m % world != rank) {
        task->skip_train_batch(micro);
        continue;
      }
      Tensor l = task->train_loss(micro);
      if (!std::isfinite(l.item())) {
        fault = "non-finite loss" + at_step + in_forward();
        break;
      }
      loss += l.item() / accum;
      std::optional<OnLeafGrad> overlap;
      if (reducer && m + world >= accum) overlap.emplace([&](const Tensor& leaf) { reducer->ready(leaf); });
      scale(l, 1.f / accum).backward();
    }
    if (world > 1) {
      // Every rank sends the same gradient buckets in the same order, even one whose loss went
      // non-finite (it sends what it has); then one rank's fault stops every rank.
      reducer->finish();
      double shared[2] = {loss, fault.empty() ? 0.0 : 1.0};
      dist::allreduce_sum(shared, 2);
      loss = shared[0];
      if (shared[1] > 0 && fault.empty()) fault = "non-finite loss" + at_step + " on another process";
    }
    const float gnorm = fault.empty() ? clip_grad_norm(ps, clip) : NAN;
    if (fault.empty() && !std::isfinite(gnorm)) {
      std::string where = first_nonfinite(ps, true);
      fault = "non-finite gradient" + at_step + (where.empty() ? "" : " in parameter '" + where + "'");
    }
    if (fault.empty()) {
      opt->step(lr);
      std::string where = first_nonfinite(ps, false);
      if (!where.empty()) fault = "non-finite parameter '" + where + "' after the update" + at_step;
    }
    // Statistics and validation see the updated weights first: check them before logging.
    std::vector<LogRow> stats;
    if (fault.empty() && stats_due) {
      if (train_rows)
        for (LogRow& r : task->train_stats()) stats.push_back({train_prefix + r.name, r.shape, std::move(r.values)});
      if (probe_rows)
        for (LogRow& r : task->probe_stats()) stats.push_back(std::move(r));
      for (const LogRow& r : stats) {
        auto bad = std::find_if(r.values.begin(), r.values.end(), [](float v) { return !std::isfinite(v); });
        if (bad == r.values.end()) continue;
        fault = "non-finite activations" + at_step + " in the statistics (stats.source = " + stats_source +
                "): statistic '" + r.name + "' at " +
                index_str(bad - r.values.begin(), r.shape) + " of " + shape_str(r.shape) + in_forward();
        break;
      }
    }
    std::vector<std::pair<std::string, double>> metrics;
    if (fault.empty() && eval_every > 0 && (step % eval_every == 0 || step == steps)) {
      metrics = task->evaluate(cfg.i("train.eval_batches"), micro);
      for (auto& [name, v] : metrics)
        if (!std::isfinite(v)) fault = "non-finite " + name + at_step + " (validation batches)" + in_forward();
    }
    if (!fault.empty()) {
      auto give_up = [&](const std::string& why) {
        log.flush();
        throw Error(fault + " (lr " + std::to_string(lr) + "); the checkpoints and the log up to step " +
                    std::to_string(step - 1) + " are intact. Lower train.lr, raise train.warmup" + why);
      };
      if (!rollback_on_nan) give_up(", or set train.on_nan=rollback");
      if (rollbacks >= kMaxRollbacks) give_up(" (" + std::to_string(kMaxRollbacks) + " rollbacks did not help)");
      // Roll back to the newest checkpoint before the fault; if the fault came on the first step
      // after the checkpoint just restored, that checkpoint itself diverges: take an older one.
      Restored back = restore_latest(dir, ps, *opt, *task, step == last_restored + 1 ? last_restored : step);
      if (!back.found) give_up(" (no earlier checkpoint to roll back to)");
      dir.abandon_checkpoints_after(back.step);
      last_restored = back.step;
      ++rollbacks;
      std::printf("%s%s; rolled back to step %lld, lr now x%g\n", interactive ? "\n" : "", fault.c_str(),
                  (long long)back.step, std::pow(rollback_factor, (double)rollbacks));
      log.truncate_after(back.step);  // rows of the abandoned steps
      step = back.step;  // the loop's ++ continues at the checkpoint's next step
      timed_from = step;
      t_begin = t_last = std::chrono::steady_clock::now();
      tokens_since = 0;
      continue;
    }
    tokens_since += (double)batch * task->tokens_per_sequence();
    log_scalar("train/loss", step, (float)loss);
    log_scalar("train/lr", step, lr);
    log_scalar("train/grad_norm", step, gnorm);
    for (const LogRow& r : stats) log.append(r.name, step, r.values.data(), r.shape);
    for (auto& [name, v] : metrics) log_scalar(name.c_str(), step, (float)v);
    if (!metrics.empty()) last_val = metrics.at(0).second;
    sum.train_loss = loss;
    if (step % log_every == 0 || step == steps) {
      auto now = std::chrono::steady_clock::now();
      double dt = std::chrono::duration<double>(now - t_last).count();
      double elapsed = std::chrono::duration<double>(now - t_begin).count();
      double tps = tokens_since / std::max(dt, 1e-9);
      log_scalar("train/tokens_per_s", step, (float)tps);
      double eta = elapsed / std::max<int64_t>(1, step - timed_from) * (steps - step);
      if (root)
        std::printf("%sstep %lld/%lld | loss %.3f | val %s | lr %.1e | %.1fk tok/s | ETA %s%s", interactive ? "\r" : "",
                  (long long)step, (long long)steps, loss,
                  std::isnan(last_val) ? "  -  " : (std::to_string(last_val).substr(0, 5)).c_str(), lr, tps / 1000,
                  format_duration(eta).c_str(), interactive && step != steps ? "   " : "\n");
      std::fflush(stdout);
      sum.tokens_per_second = tps;
      tokens_since = 0;
      t_last = now;
    }
    bool stopping = g_stop_signal != 0 || (stop_after > 0 && step - start >= stop_after && step < steps);
    if (world > 1) {  // every rank stops at the same step, or the next all-reduce would hang
      double any = stopping;
      dist::allreduce_sum(&any, 1);
      stopping = any > 0;
    }
    bool save = is_checkpoint_step(step, cfg) || stopping;
    if (save || step % flush_every == 0) flush_log(step);  // first: the log covers every checkpoint
    if (save) checkpoint(step);
    sum.steps = step;
    if (stopping) {
      if (root)
        std::printf("\nstopped at step %lld%s; checkpoint saved, resume with: sinklab train --resume %s\n",
                  (long long)step, g_stop_signal ? (" by signal " + std::to_string(g_stop_signal)).c_str() : "",
                  dir.path.c_str());
      break;
    }
  }
  sum.val_loss = last_val;  // the last step (train.steps, or where it stopped) flushed the log
  log_file.reset();
  if (!root) std::remove(scratch.c_str());
  return sum;
}

}  // namespace sl::train
