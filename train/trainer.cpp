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

#include "data/files.h"
#include "engine/h5log.h"
#include "engine/ops.h"
#include "engine/optim.h"
#include "engine/schedule.h"
#include "engine/threads.h"
#include "train/checkpointing.h"
#include "train/distributed.h"
#include "train/progress.h"
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
    if (t.defined() && !all_finite(t)) return p.name;
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

// ---- one optimiser step ----------------------------------------------------------------------

Trainer::Trainer(const Config& cfg) : cfg_(cfg) {
  set_num_threads((int)cfg.i("train.threads"));
  pin_threads(cfg.b("train.pin_threads"), dist::local_rank() * num_threads());
  task_ = make_task(cfg, ps_);
  assign_weight_decay(ps_, cfg);
  opt_ = make_optimizer(ps_, cfg);
  sched_ = make_schedule(cfg);
  // Data parallelism: the global batch's micro-batches are dealt round-robin to the ranks, whose
  // gradients are summed; every rank draws every micro-batch so that the data order (and so the
  // curve) is that of one process with the same global batch and micro-batch.
  world_ = dist::size(), rank_ = dist::rank();
  batch_ = cfg.i("train.batch_size");
  micro_ = sl::micro_batch(cfg);
  accum_ = batch_ / std::max<int64_t>(micro_, 1);
  SL_CHECK(micro_ > 0 && batch_ % micro_ == 0 && accum_ % world_ == 0,
           "train.batch_size " + std::to_string(batch_) + " must split into micro-batches (train.micro_batch " +
               std::to_string(micro_) + ") that divide evenly among " + std::to_string(world_) + " processes");
  bucket_bytes_ = cfg.i("train.allreduce_bucket_kb") * 1024;
  grad_clip_ = (float)cfg.f("train.grad_clip");
  rollback_factor_ = cfg.f("train.rollback_lr_factor");
  if (rank_ == 0 && world_ > 1) {
    const int64_t buckets = dist::GradientReducer(ps_, bucket_bytes_).buckets();
    std::printf("data parallel over %d processes: gradients summed in %lld bucket%s during the backward\n", world_,
                (long long)buckets, buckets == 1 ? "" : "s");
  }
}

// Where the forward of the last training batch first turns non-finite, as a clause of a fault.
static std::string in_forward(Task& task) {
  std::string where = task.diagnose_nonfinite();
  return where.empty() ? "" : ", first in " + where + " (forward of the training batch)";
}

StepResult Trainer::step(int64_t step, bool with_stats) {
  StepResult r;
  r.lr = sched_.at(step - 1) * (float)std::pow(rollback_factor_, (double)rollbacks);
  ps_.zero_grad();
  // Under mpirun, gradients are summed across processes during the backward of the last
  // micro-batch this rank trains (the earlier ones accumulate locally).
  std::optional<dist::GradientReducer> reducer;
  if (world_ > 1) reducer.emplace(ps_, bucket_bytes_);
  bool first = true;
  for (int64_t m = 0; m < accum_; ++m) {
    if (m % world_ != rank_) {
      task_->skip_train_batch(micro_);
      continue;
    }
    TrainLoss l = task_->train_loss(micro_, with_stats && first);
    if (first) r.stats = std::move(l.stats), r.forward_bytes = Storage::live_bytes();
    first = false;
    if (!std::isfinite(l.loss.item())) {
      r.fault = "non-finite loss at step " + std::to_string(step) + in_forward(*task_);
      break;
    }
    r.loss += l.loss.item() / accum_;
    std::optional<OnLeafGrad> overlap;
    if (reducer && m + world_ >= accum_) overlap.emplace([&](const Tensor& leaf) { reducer->ready(leaf); });
    scale(l.loss, 1.f / accum_).backward();
  }
  if (world_ > 1) {
    // Every rank sends the same gradient buckets in the same order, even one whose loss went
    // non-finite (it sends what it has); then one rank's fault stops every rank.
    reducer->finish();
    double shared[2] = {r.loss, r.fault.empty() ? 0.0 : 1.0};
    dist::allreduce_sum(shared, 2);
    r.loss = shared[0];
    if (shared[1] > 0 && r.fault.empty()) r.fault = "non-finite loss at step " + std::to_string(step) + " on another process";
  }
  if (!r.fault.empty()) return r;
  // A non-finite gradient stops the step before the update; a non-finite weight after it.
  const std::string at_step = " at step " + std::to_string(step);
  r.grad_norm = clip_grad_norm(ps_, grad_clip_);
  if (!std::isfinite(r.grad_norm)) {
    const std::string where = first_nonfinite(ps_, true);
    r.fault = "non-finite gradient" + at_step + (where.empty() ? "" : " in parameter '" + where + "'");
    return r;
  }
  opt_->step(r.lr);
  const std::string where = first_nonfinite(ps_, false);
  if (!where.empty()) r.fault = "non-finite parameter '" + where + "' after the update" + at_step;
  return r;
}

// ---- the run around the steps: log, checks, rollback, progress, checkpoints ------------------

namespace {

class RunLoop {
 public:
  RunLoop(const Config& cfg, const RunDir& dir, bool resume, int64_t stop_after);
  TrainSummary run();

 private:
  void start();
  std::string measure(int64_t step, StepResult& r, std::vector<std::pair<std::string, double>>& metrics);
  int64_t roll_back(int64_t step, const std::string& fault, float lr);
  void log(int64_t step, const StepResult& r, const std::vector<std::pair<std::string, double>>& metrics);
  void progress(int64_t step, double loss, float lr);
  bool finish_step(int64_t step);
  void guarded(int64_t step, const std::function<void()>& write);
  void checkpoint(int64_t step);

  const Config& cfg_;
  const RunDir& dir_;
  const bool resume_, root_, interactive_;
  const int64_t stop_after_, steps_;
  Trainer trainer_;
  const std::string stats_source_;
  const bool probe_rows_, train_rows_;
  const int64_t stats_every_, eval_every_;  // 0 on ranks other than 0: evaluation, logs and checkpoints are rank 0's
  const int64_t log_every_, flush_every_, tokens_per_step_;
  std::string scratch_;                     // the log of ranks other than 0, which nobody reads
  std::unique_ptr<H5Log> log_;
  int64_t start_ = 0, last_restored_ = -1, timed_from_ = 0;
  TrainSummary sum_;
  double last_val_ = NAN, tokens_since_ = 0;
  std::chrono::steady_clock::time_point t_begin_, t_last_;
};

RunLoop::RunLoop(const Config& cfg, const RunDir& dir, bool resume, int64_t stop_after)
    : cfg_(cfg),
      dir_(dir),
      resume_(resume),
      root_(dist::rank() == 0),
      interactive_(isatty(fileno(stdout))),
      stop_after_(stop_after),
      steps_(cfg.i("train.steps")),
      trainer_(cfg),
      stats_source_(sl::stats_source(cfg)),
      probe_rows_(stats_source_ != "train"),
      train_rows_(stats_source_ != "probe"),
      stats_every_(root_ ? cfg.i("stats.every") : 0),
      eval_every_(root_ ? cfg.i("train.eval_every") : 0),
      log_every_(std::max<int64_t>(1, cfg.i("train.log_every"))),
      flush_every_(std::max<int64_t>(1, cfg.i("stats.flush_every"))),
      tokens_per_step_(cfg.i("train.batch_size") * trainer_.task().tokens_per_sequence()) {
  SL_CHECK(cfg.s("train.on_nan") != "rollback" || dist::size() == 1,
           "train.on_nan=rollback is for single-process runs; use stop under mpirun");
}

// Restores a resumed run (or writes a new one's config), opens the log, and logs step 0.
void RunLoop::start() {
  Trainer& t = trainer_;
  Restored restored;
  if (resume_) restored = restore_latest(dir_, t.params(), t.optimizer(), t.task());
  start_ = timed_from_ = restored.step;
  t.rollbacks = restored.rollbacks;
  if (!resume_ && root_) data::write_file_atomic(dir_.config(), cfg_.to_yaml());
  // Other ranks log into a scratch file nobody reads, so the loop has no rank branches.
  scratch_ = "/tmp/sinklab-rank" + std::to_string(dist::rank()) + "-" + std::to_string(::getpid()) + ".h5";
  log_ = root_ ? open_log(dir_, resume_) : std::make_unique<H5Log>(scratch_);
  // Rows past the checkpoint belong to the interrupted future; step 0's rows are logged again.
  log_->truncate_after(start_ > 0 ? start_ : -1);
  log_->set_attr("config", cfg_.to_yaml());
  if (start_ == 0) checkpoint(0);
  if (root_)
    std::printf("run %s: %lld parameters, %lld steps of %lld x %lld tokens%s\n", dir_.path.c_str(),
                (long long)t.params().count(), (long long)steps_, (long long)cfg_.i("train.batch_size"),
                (long long)t.task().tokens_per_sequence(),
                start_ ? (" (resuming at step " + std::to_string(start_) + ")").c_str() : "");
  if (root_ && stats_every_ > 0)
    std::printf("attention statistics every %lld step%s from %s (stats.source = %s)\n", (long long)stats_every_,
                stats_every_ == 1 ? "" : "s",
                stats_source_ == "train"   ? "the training forward's leading block"
                : stats_source_ == "probe" ? "a forward of the fixed probe batch after the update"
                                           : "the probe batch and the training forward",
                cfg_.s("stats.source").c_str());
  if (start_ == 0 && stats_every_ > 0 && probe_rows_)
    for (const LogRow& r : t.task().probe_stats()) log_->append(r.name, 0, r.values.data(), r.shape);
}

// Statistics and validation of a step that updated cleanly; they see the updated weights and
// are checked before anything is logged. Returns the fault, "" if none.
std::string RunLoop::measure(int64_t step, StepResult& r, std::vector<std::pair<std::string, double>>& metrics) {
  Task& task = trainer_.task();
  const std::string at_step = " at step " + std::to_string(step);
  if (stats_every_ > 0 && step % stats_every_ == 0) {
    const std::string prefix = stats_source_ == "both" ? "train_batch/" : "";
    std::vector<LogRow> stats;
    if (train_rows_)
      for (LogRow& row : r.stats) stats.push_back({prefix + row.name, row.shape, std::move(row.values)});
    if (probe_rows_)
      for (LogRow& row : task.probe_stats()) stats.push_back(std::move(row));
    r.stats = std::move(stats);
    for (const LogRow& row : r.stats) {
      auto bad = std::find_if(row.values.begin(), row.values.end(), [](float v) { return !std::isfinite(v); });
      if (bad != row.values.end())
        return "non-finite activations" + at_step + " in the statistics (stats.source = " + stats_source_ +
               "): statistic '" + row.name + "' at " + index_str(bad - row.values.begin(), row.shape) + " of " +
               shape_str(row.shape) + in_forward(task);
    }
  }
  if (eval_every_ > 0 && (step % eval_every_ == 0 || step == steps_)) {
    metrics = task.evaluate(cfg_.i("train.eval_batches"), trainer_.micro_batch());
    for (auto& [name, v] : metrics)
      if (!std::isfinite(v)) return "non-finite " + name + at_step + " (validation batches)" + in_forward(task);
  }
  return "";
}

// train.on_nan = rollback: back to the newest checkpoint before the fault, with a lower lr; the
// step to continue after. Otherwise, or when rolling back cannot help, the run stops.
int64_t RunLoop::roll_back(int64_t step, const std::string& fault, float lr) {
  constexpr int64_t kMaxRollbacks = 20;  // then the lr is at most factor^20 of the schedule's: give up
  auto give_up = [&](const std::string& why) {
    log_->flush();
    throw Error(fault + " (lr " + std::to_string(lr) + "); the checkpoints and the log up to step " +
                std::to_string(step - 1) + " are intact. Lower train.lr, raise train.warmup" + why);
  };
  Trainer& t = trainer_;
  if (cfg_.s("train.on_nan") != "rollback") give_up(", or set train.on_nan=rollback");
  if (t.rollbacks >= kMaxRollbacks) give_up(" (" + std::to_string(kMaxRollbacks) + " rollbacks did not help)");
  // If the fault came on the first step after the checkpoint just restored, that checkpoint
  // itself diverges: take an older one.
  Restored back = restore_latest(dir_, t.params(), t.optimizer(), t.task(), step == last_restored_ + 1 ? last_restored_ : step);
  if (!back.found) give_up(" (no earlier checkpoint to roll back to)");
  dir_.abandon_checkpoints_after(back.step);
  last_restored_ = back.step;
  ++t.rollbacks;
  std::printf("%s%s; rolled back to step %lld, lr now x%g\n", interactive_ ? "\n" : "", fault.c_str(),
              (long long)back.step, std::pow(cfg_.f("train.rollback_lr_factor"), (double)t.rollbacks));
  log_->truncate_after(back.step);  // rows of the abandoned steps
  timed_from_ = back.step;
  t_begin_ = t_last_ = std::chrono::steady_clock::now();
  tokens_since_ = 0;
  return back.step;
}

void RunLoop::log(int64_t step, const StepResult& r, const std::vector<std::pair<std::string, double>>& metrics) {
  auto scalar = [&](const std::string& name, float v) { log_->append(name, step, &v, {}); };
  tokens_since_ += (double)tokens_per_step_;
  scalar("train/loss", (float)r.loss);
  scalar("train/lr", r.lr);
  scalar("train/grad_norm", r.grad_norm);
  for (const LogRow& row : r.stats) log_->append(row.name, step, row.values.data(), row.shape);
  for (auto& [name, v] : metrics) scalar(name, (float)v);
  if (!metrics.empty()) last_val_ = metrics.at(0).second;
  sum_.train_loss = r.loss;
  if (step % log_every_ == 0 || step == steps_) progress(step, r.loss, r.lr);
}

// The progress line with tokens/s and the ETA, and train/tokens_per_s.
void RunLoop::progress(int64_t step, double loss, float lr) {
  auto now = std::chrono::steady_clock::now();
  double dt = std::chrono::duration<double>(now - t_last_).count();
  double elapsed = std::chrono::duration<double>(now - t_begin_).count();
  double tps = tokens_since_ / std::max(dt, 1e-9);
  const float tps_f = (float)tps;
  log_->append("train/tokens_per_s", step, &tps_f, {});
  double eta = elapsed / std::max<int64_t>(1, step - timed_from_) * (steps_ - step);
  if (root_)
    std::printf("%sstep %lld/%lld | loss %.3f | val %s | lr %.1e | %.1fk tok/s | ETA %s%s", interactive_ ? "\r" : "",
                (long long)step, (long long)steps_, loss,
                std::isnan(last_val_) ? "  -  " : (std::to_string(last_val_).substr(0, 5)).c_str(), lr, tps / 1000,
                format_duration(eta).c_str(), interactive_ && step != steps_ ? "   " : "\n");
  std::fflush(stdout);
  sum_.tokens_per_second = tps;
  tokens_since_ = 0;
  t_last_ = now;
}

// Flushes the log and checkpoints where due; true when the run stops here (a signal, stop_after).
bool RunLoop::finish_step(int64_t step) {
  bool stopping = g_stop_signal != 0 || (stop_after_ > 0 && step - start_ >= stop_after_ && step < steps_);
  if (dist::size() > 1) {  // every rank stops at the same step, or the next all-reduce would hang
    double any = stopping;
    dist::allreduce_sum(&any, 1);
    stopping = any > 0;
  }
  const bool save = is_checkpoint_step(step, cfg_) || stopping;
  // The log first, so that it covers every checkpoint.
  if (save || step % flush_every_ == 0) guarded(step, [&] { log_->flush(); });
  if (save) checkpoint(step);
  sum_.steps = step;
  if (stopping && root_)
    std::printf("\nstopped at step %lld%s; checkpoint saved, resume with: sinklab train --resume %s\n", (long long)step,
                g_stop_signal ? (" by signal " + std::to_string(g_stop_signal)).c_str() : "", dir_.path.c_str());
  return stopping;
}

// A failed checkpoint or log write (a full disk...) stops the run with the reason; what was
// written before stays intact (both are replaced atomically), so the run can be resumed.
void RunLoop::guarded(int64_t step, const std::function<void()>& write) {
  try {
    write();
  } catch (const Error& e) {
    throw Error(std::string(e.what()) + "; the run stopped at step " + std::to_string(step) +
                ", earlier checkpoints and the log as last flushed are intact; resume with: sinklab train --resume " +
                dir_.path);
  }
}

void RunLoop::checkpoint(int64_t step) {
  Trainer& t = trainer_;
  if (root_)
    guarded(step, [&] { save_run_checkpoint(dir_, step, t.rollbacks, t.params(), t.optimizer(), t.task(), cfg_); });
}

TrainSummary RunLoop::run() {
  start();
  if (start_ >= steps_ && resume_) {
    sum_.steps = start_, sum_.already_complete = true;
    return sum_;
  }
  t_begin_ = t_last_ = std::chrono::steady_clock::now();
  for (int64_t step = start_ + 1; step <= steps_; ++step) {
    const bool stats_due = stats_every_ > 0 && step % stats_every_ == 0;
    StepResult r = trainer_.step(step, stats_due && train_rows_);
    std::vector<std::pair<std::string, double>> metrics;
    std::string fault = r.fault.empty() ? measure(step, r, metrics) : r.fault;
    if (!fault.empty()) {
      step = roll_back(step, fault, r.lr);  // the loop's ++ continues at the checkpoint's next step
      continue;
    }
    log(step, r, metrics);
    if (finish_step(step)) break;
  }
  sum_.val_loss = last_val_;  // the last step (train.steps, or where it stopped) flushed the log
  log_.reset();
  if (!root_) std::remove(scratch_.c_str());
  return sum_;
}

}  // namespace

TrainSummary train(const Config& cfg, const RunDir& dir, bool resume, int64_t stop_after) {
  // From the start, so that a signal during setup also ends with a checkpoint, not a kill.
  std::signal(SIGINT, on_stop_signal);
  std::signal(SIGTERM, on_stop_signal);
  return RunLoop(cfg, dir, resume, stop_after).run();
}

}  // namespace sl::train
