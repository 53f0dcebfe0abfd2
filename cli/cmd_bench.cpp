// sinklab bench: training throughput of sinklab and of the PyTorch eager reference on the same
// threads and shapes, in one invocation, so that the ratio is measured under the same load.
#include <unistd.h>

#include <malloc.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>

#include "cli/commands.h"
#include "engine/dnnl_context.h"
#include "engine/h5log.h"
#include "engine/optim.h"
#include "engine/precision.h"
#include "engine/profile.h"
#include "engine/threads.h"
#include "models/flops.h"
#include "train/bench_shapes.h"
#include "train/config.h"
#include "train/distributed.h"
#include "train/model_builder.h"
#include "train/schema.h"
#include "train/task.h"
#include "train/trainer.h"

namespace sl::cli {

const char* const kBenchHelp =
    "usage: sinklab bench [--shapes small,large,calibrated] [--attn softmax,sigmoid] [--precision f32,bf16]\n"
    "                     [--steps N] [--threads N,...] [--vocab N] [--torch-ref PATH | --no-torch]\n"
    "                     [--python PATH] [--stats] [--stats-steps N] [--profile] [--pin]\n\n"
    "Trains the LLaMA-style reference shapes with AdamW on random tokens and prints tokens/s, model\n"
    "GFLOP/s (6 * the parameters a token multiplies, the input embedding excluded, + 12 * layers * d *\n"
    "sequence per token, as the reference counts), % of oneDNN's matmul peak measured in the same run\n"
    "at the same threads (the mean of the peak measured just before the row and just after it, both\n"
    "printed: a host's speed drifts), and the ratio to PyTorch eager running the same shapes on the\n"
    "same threads (--torch-ref, default ../shared/bench/torch_ref.py, run with --python, default\n"
    "/usr/bin/python3, Debian's interpreter that has torch).\n"
    "--threads lists the thread counts to run every row at (default: OMP_NUM_THREADS).\n"
    "--precision lists sinklab's matmul precisions to time (train.dtype; default f32): bf16 rounds\n"
    "matmul operands to bfloat16 with fp32 accumulation and master weights; its % of peak is of\n"
    "oneDNN's bf16 matmul peak, and 'vs f32' its tokens/s over the f32 row's. The PyTorch reference\n"
    "always runs in fp32.\n"
    "  small: d=256, 4 layers, 4 heads, SwiGLU 688, vocab 256, sequence 256, batch 16\n"
    "  large: d=512, 8 layers, 8 heads, SwiGLU 1376, vocab 8192, sequence 256, batch 8\n"
    "  calibrated: d=128, 4 layers, 4 heads, SwiGLU 344, vocab 1024, sequence 64, batch 32 (the\n"
    "    reproduction's runs)\n"
    "--vocab N gives every shape a vocabulary of N tokens instead (the issue measured the calibrated\n"
    "shape at 4096).\n"
    "--scaling 1,2,4,8,16 prints sinklab's tokens/s on the first shape and attention at each thread\n"
    "count with the parallel efficiency tps(n) / (n * tps(first)), instead of the table.\n"
    "--stats also times a step that logs the attention statistics to HDF5 (the cost of stats.every=1),\n"
    "from each stats.source: probe (a separate forward of the probe batch) and train (read from the\n"
    "training forward itself; what the default, auto, takes on these shapes): --stats-steps N\n"
    "(default 20) such steps interleaved with as many plain ones, the median of each one's time\n"
    "less the plain step's before it over the median plain step, +- that median's standard error,\n"
    "with the log's writes to disk (every stats.flush_every statistics steps) at their mean.\n"
    "--profile prints where a step's time goes, op by op.\n"
    "--pin binds sinklab's threads to CPUs (train.pin_threads) while it runs; PyTorch always runs\n"
    "with its defaults (it slowed tenfold under OMP_PROC_BIND).\n"
    "Under mpirun every row trains data-parallel over the job's R processes of --threads T each, and\n"
    "its threads column reads RxT: the peak is the sum of every process's, measured at once, and\n"
    "PyTorch runs on R*T threads while the other processes wait. Launch it unbound, so that the\n"
    "reference may use every CPU (--pin places the processes on CPUs of their own):\n"
    "  mpirun -np 2 --bind-to none sinklab bench --shapes calibrated --threads 1\n"
    "Also prints peak resident memory against parameters + gradients + AdamW state + the\n"
    "activations held for backward: of training with the default statistics, and (--stats) with the\n"
    "probe's forward as well; whole, and beyond what the process held as the configuration started.\n";

namespace {

// The q-quantile of v by rank (q = 0.5 the median).
double quantile(std::vector<double> v, double q) {
  const size_t i = std::min(v.size() - 1, (size_t)(q * (double)v.size()));
  std::nth_element(v.begin(), v.begin() + (ptrdiff_t)i, v.end());
  return v[i];
}
double median(const std::vector<double>& v) { return quantile(v, 0.5); }

// A cost as a fraction of a step, with its standard error.
struct Cost {
  double value = NAN, error = NAN;
};

// The median of the extra seconds each measured step took, plus `fixed` seconds, over `step`
// seconds; its error is the median's standard error, 1.2533 sigma / sqrt(n), with sigma from
// the interquartile range (IQR / 1.349), which a few steps slowed by other work do not inflate.
Cost cost_over(const std::vector<double>& extra, double fixed, double step) {
  const double sigma = (quantile(extra, 0.75) - quantile(extra, 0.25)) / 1.349;
  return {(median(extra) + fixed) / step, 1.2533 * sigma / std::sqrt((double)extra.size()) / step};
}

// oneDNN's own matmul rate on a large square product with operands of this precision (the
// result is fp32, as in gemm): the ceiling for our kernels.
double matmul_peak_gflops(MatmulPrecision precision) {
  const int64_t n = 2048;
  using namespace dnnl;
  const auto in = precision == MatmulPrecision::bf16 ? memory::data_type::bf16 : memory::data_type::f32;
  auto in_md = memory::desc({n, n}, in, memory::format_tag::ab);
  auto out_md = memory::desc({n, n}, memory::data_type::f32, memory::format_tag::ab);
  dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(in_md, in_md, out_md), dnnl_ctx::engine());
  dnnl::matmul mm(pd);
  // fp32 buffers are large enough for bf16 operands too (0.5f reads as bf16 0 and 0.5).
  Tensor a = Tensor::full({n, n}, 0.5f), b = Tensor::full({n, n}, 0.25f), c = Tensor::zeros({n, n});
  memory ma(in_md, dnnl_ctx::engine(), a.data()), mb(in_md, dnnl_ctx::engine(), b.data()),
      mc(out_md, dnnl_ctx::engine(), c.data());
  std::vector<double> t;
  train::dist::barrier();  // every process at once: the peak of the CPUs the job uses
  for (int i = 0; i < 6; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    mm.execute(dnnl_ctx::stream(), {{DNNL_ARG_SRC, ma}, {DNNL_ARG_WEIGHTS, mb}, {DNNL_ARG_DST, mc}});
    dnnl_ctx::stream().wait();
    if (i) t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  double gflops = 2.0 * n * n * n / median(t) / 1e9;
  train::dist::allreduce_sum(&gflops, 1);
  return gflops;
}

// A size line of /proc/self/status ("VmHWM": the peak resident set; "VmRSS": the resident set now).
int64_t status_bytes(const std::string& field) {
  std::ifstream f("/proc/self/status");
  for (std::string line; std::getline(f, line);)
    if (line.rfind(field + ":", 0) == 0) return std::stoll(line.substr(field.size() + 1)) * 1024;
  return 0;
}
int64_t peak_rss_bytes() { return status_bytes("VmHWM"); }

// Starts a configuration's peak-RSS measurement from what the process holds now: the previous
// configuration's pooled and freed memory goes back to the system, then the kernel's high-water
// mark is reset (clear_refs 5), so each configuration is measured as if it ran alone.
void reset_peak_rss() {
  Storage::release_free();
  malloc_trim(0);
  std::ofstream("/proc/self/clear_refs") << "5";
}


struct Result {
  double tokens_per_s = 0, gflops = 0;
  Cost stats_probe, stats_train;
  int64_t params = 0, state_bytes = 0, activation_bytes = 0, peak_rss = 0, peak_rss_probe = 0;
  int64_t rss_before = 0;  // what the process held as the configuration started: code, libraries
};

Result bench_sinklab(const train::BenchShape& s, const std::string& attn, const std::string& dtype, int threads, int steps,
                     int stats_steps, bool prof, bool pin) {
  Config cfg = train::bench_config(s, attn, dtype, threads);
  cfg.set("train.pin_threads", pin ? "true" : "false");
  reset_peak_rss();
  const int64_t rss_before = status_bytes("VmRSS");
  train::Trainer trainer(cfg);  // the trainer's own step is what is timed
  ParamStore& ps = trainer.params();
  train::Task& task = trainer.task();
  std::string log_path = "/tmp/sinklab_bench_" + std::to_string(::getpid()) + ".h5";
  std::remove(log_path.c_str());
  H5Log log(log_path);

  Result r;
  r.rss_before = rss_before;
  r.params = ps.count();
  enum Stats { None, Probe, Train };  // which statistics a step logs (stats.source)
  auto timed_step = [&](Stats stats, int i) {
    auto t0 = std::chrono::steady_clock::now();
    train::StepResult step = trainer.step(i + 1, stats == Train);
    SL_CHECK(step.fault.empty(), "bench: " + step.fault);
    if (i == 1) r.activation_bytes = step.forward_bytes;
    if (stats != None)
      for (auto& row : stats == Probe ? task.probe_stats() : step.stats) log.append(row.name, i, row.values.data(), row.shape);
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  auto run_steps = [&](int n) {
    std::vector<double> t;
    for (int i = 0; i < n + 2; ++i) {  // 2 warm-up steps create every primitive and pooled buffer
      if (prof && i == 2) profile::reset();
      profile::mark();
      const double dt = timed_step(None, i);
      if (i >= 2) t.push_back(dt);
    }
    return median(t);
  };
  profile::enable(prof);
  Storage::reset_peak();
  int64_t before = Storage::live_bytes();
  double step = run_steps(steps);
  r.activation_bytes -= before;
  profile::enable(false);
  if (prof)
    std::printf("\nwhere a step goes (%s, %s attention, %s, %d threads%s):\n%s", s.name.c_str(), attn.c_str(),
                dtype.c_str(), threads,
                train::dist::size() > 1 ? (" of process 0 of " + std::to_string(train::dist::size())).c_str() : "",
                profile::report().c_str());
  const double tokens = (double)s.batch * s.seq;
  const double flop = models::train_flops_per_token(train::decoder_config(cfg, s.vocab), s.seq) * tokens;
  r.tokens_per_s = tokens / step;
  r.gflops = flop / step / 1e9;
  r.state_bytes = ps.flat_size() * 4 * 4;  // values, gradients, AdamW m and v
  // Each kind of statistics step interleaved with plain ones, each paired with the plain step
  // just before it, so that a host whose speed drifts weighs on both alike.
  // The log goes to disk as a run's does, every stats.flush_every statistics steps; those writes
  // are timed apart and counted at their mean per statistics step.
  int log_step = steps + 2;  // the log's step index, rising across both kinds
  const int64_t flush_every = cfg.i("stats.flush_every");
  auto cost_of = [&](Stats kind) {
    std::vector<double> t[2];
    double flushing = 0;
    for (int i = 0; i < 2 * stats_steps; ++i) {
      t[i % 2].push_back(timed_step(i % 2 ? kind : None, log_step++));
      if (i % 2 && (i / 2 + 1) % flush_every == 0) {
        auto t0 = std::chrono::steady_clock::now();
        log.flush();
        flushing += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      }
    }
    std::vector<double> extra(t[1].size());
    for (size_t i = 0; i < extra.size(); ++i) extra[i] = t[1][i] - t[0][i];
    return cost_over(extra, flushing / stats_steps, median(t[0]));
  };
  // The training forward's statistics (the default source on these shapes) before the probe's, so
  // that the peak memory is the default run's; the probe's forward then adds its own buffers.
  if (stats_steps > 0) r.stats_train = cost_of(Train);
  r.peak_rss = peak_rss_bytes();
  if (stats_steps > 0) r.stats_probe = cost_of(Probe);
  r.peak_rss_probe = peak_rss_bytes();
  pin_threads(false);  // a process started next (the reference) inherits this thread's binding
  train::dist::barrier();
  return r;
}

// tokens/s of the PyTorch reference, or -1 if it could not run. Under mpirun it runs on rank 0
// only, on the threads of every process, while the others wait.
double bench_torch(const std::string& python, const std::string& ref, const train::BenchShape& s, const std::string& attn,
                   int threads, int steps) {
  threads *= train::dist::size();
  struct Together {
    ~Together() { train::dist::barrier(); }
  } together;
  if (!train::dist::root()) return -1;
  std::ostringstream cmd;
  cmd << "OMP_NUM_THREADS=" << threads << " " << python << " " << ref << " --d " << s.d << " --layers " << s.layers
      << " --heads " << s.heads << " --ffn " << s.ffn << " --seq " << s.seq << " --batch " << s.batch << " --vocab "
      << s.vocab << " --steps " << steps << " --attn " << attn << " 2>&1";
  FILE* p = popen(cmd.str().c_str(), "r");
  if (!p) return -1;
  std::string out;
  char buf[512];
  while (fgets(buf, sizeof buf, p)) out += buf;
  pclose(p);
  size_t k = out.find("tokens/s=");
  if (k == std::string::npos) {
    std::fprintf(stderr, "bench: the PyTorch reference did not report tokens/s:\n%s\n", out.c_str());
    return -1;
  }
  return std::stod(out.substr(k + 9));
}

// `value` of `option` as a whole number >= 1, or an error naming both.
int positive_int(const std::string& option, const std::string& value) {
  size_t end = 0;
  int n = 0;
  try {
    n = std::stoi(value, &end);
  } catch (const std::exception&) {
    end = 0;
  }
  SL_CHECK(end > 0 && end == value.size() && n >= 1,
           option + " takes a whole number >= 1, got '" + value + "' (see sinklab bench --help)");
  return n;
}

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string x; std::getline(ss, x, ',');) out.push_back(x);
  return out;
}

}  // namespace

int cmd_bench(const Args& args) {
  std::vector<std::string> shapes{"small", "large"}, attns{"softmax", "sigmoid"}, dtypes{"f32"};
  int steps = 5, stats_steps = 20, vocab = 0;
  std::vector<int> thread_counts{num_threads()};
  std::string ref = "../shared/bench/torch_ref.py", python = "/usr/bin/python3";
  bool torch = true, stats = false, prof = false, pin = false;
  std::vector<std::string> scaling;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--no-torch") torch = false;
    else if (a == "--stats") stats = true;
    else if (a == "--profile") prof = true;
    else if (a == "--pin") pin = true;
    else {
      SL_CHECK(i + 1 < args.size(), "option " + a + " needs a value (see sinklab bench --help)");
      const std::string& v = args[++i];
      if (a == "--shapes") shapes = split_list(v);
      else if (a == "--attn") attns = split_list(v);
      else if (a == "--precision") dtypes = split_list(v);
      else if (a == "--steps") steps = positive_int(a, v);
      else if (a == "--stats-steps") stats_steps = positive_int(a, v);
      else if (a == "--vocab") vocab = positive_int(a, v);
      else if (a == "--threads") {
        thread_counts.clear();
        for (auto& t : split_list(v)) thread_counts.push_back(positive_int(a, t));
        SL_CHECK(!thread_counts.empty(), "--threads takes a list of whole numbers >= 1 (see sinklab bench --help)");
      }
      else if (a == "--torch-ref") ref = v;
      else if (a == "--python") python = v;
      else if (a == "--scaling") scaling = split_list(v);
      else throw Error("unknown option '" + a + "' (see sinklab bench --help)");
    }
  }
  for (auto& name : shapes) train::bench_shape(name, vocab);  // every name checked before anything runs
  if (!train::dist::root()) std::freopen("/dev/null", "w", stdout);  // rank 0 prints for the job
  for (auto& d : dtypes) parse_matmul_precision(d);
  if (!dnnl_ctx::bf16_matmul_supported() && std::erase(dtypes, "bf16")) {
    std::printf("bench: no bf16 rows: oneDNN has no bf16 matmul for this CPU (AVX512-BF16, AMX or AVX2-VNNI-2)\n");
    SL_CHECK(!dtypes.empty(), "bench: --precision names only bf16, which this CPU cannot run");
  }
  if (torch && !std::ifstream(ref).good()) {
    std::fprintf(stderr, "bench: no PyTorch reference at %s (give --torch-ref PATH or --no-torch)\n", ref.c_str());
    torch = false;
  }
  const int ranks = train::dist::size();
  auto label = [&](int threads) {  // a row's threads: RxT under mpirun
    return (ranks > 1 ? std::to_string(ranks) + "x" : "") + std::to_string(threads);
  };
  // oneDNN's matmul peak in GFLOP/s at `threads`, for one precision.
  auto peak_at = [&](int threads, const std::string& dtype) {
    set_num_threads(threads);
    pin_threads(pin, train::dist::local_rank() * threads);
    const double peak = matmul_peak_gflops(parse_matmul_precision(dtype));
    pin_threads(false);
    return peak;
  };
  // ... for every precision, printed as it is measured.
  auto measure_peak = [&](int threads) {
    std::printf("threads %s, oneDNN matmul peak (2048^3, fp32 result%s):", label(threads).c_str(),
                ranks > 1 ? ", summed over the processes" : "");
    for (auto& d : dtypes) std::printf(" %s %.0f GFLOP/s", d.c_str(), peak_at(threads, d));
    std::printf("%s\n", pin ? ", threads pinned" : "");
    std::fflush(stdout);
  };

  if (!scaling.empty()) {
    measure_peak(thread_counts.at(0));
    const train::BenchShape s = train::bench_shape(shapes.at(0), vocab);
    std::printf("\nthread scaling, %s shape, %s attention, %s:\n\n| threads | tok/s | GFLOP/s | speed-up | efficiency |\n"
                "|---|---|---|---|---|\n", s.name.c_str(), attns.at(0).c_str(), dtypes.at(0).c_str());
    double base = 0;
    int base_threads = 0;
    for (auto& t : scaling) {
      const int n = positive_int("--scaling", t);
      Result r = bench_sinklab(s, attns.at(0), dtypes.at(0), n, steps, 0, false, pin);
      if (base == 0) base = r.tokens_per_s, base_threads = n;
      const double speedup = r.tokens_per_s / base;
      std::printf("| %d | %.0f | %.1f | %.2fx | %.0f%% |\n", n, r.tokens_per_s, r.gflops, speedup,
                  100 * speedup * base_threads / n);
      std::fflush(stdout);
    }
    return 0;
  }
  // The host's speed drifts (the f32 peak of one core has moved by 20 % within minutes), so each
  // row is also against the mean of the peak measured just before it and just after it.
  for (int threads : thread_counts) measure_peak(threads);
  std::printf("\n| threads | shape | attention | precision | sinklab tok/s | GFLOP/s | %% of peak | peak GFLOP/s, "
              "before-after | PyTorch fp32 tok/s | ratio | vs f32 |%s\n",
              stats ? " stats cost, probe | stats cost, train |" : "");
  std::printf("|---|---|---|---|---|---|---|---|---|---|---|%s\n", stats ? "---|---|" : "");
  std::vector<std::string> memory_lines;
  double worst_ratio = 0, worst_beyond = 0;
  for (int threads : thread_counts) {
    for (auto& name : shapes) {
      const train::BenchShape s = train::bench_shape(name, vocab);
      for (auto& attn : attns) {
        double t = torch ? bench_torch(python, ref, s, attn, threads, steps) : -1;
        double f32_tps = 0;  // the f32 row's, for the others' 'vs f32'
        for (auto& dtype : dtypes) {
          const double before = peak_at(threads, dtype);
          Result r = bench_sinklab(s, attn, dtype, threads, steps, stats ? stats_steps : 0, prof, pin);
          const double after = peak_at(threads, dtype), peak = (before + after) / 2;
          if (dtype == "f32") f32_tps = r.tokens_per_s;
          std::printf("| %s | %s | %s | %s | %.0f | %.1f | %.0f%% | %.0f, %.0f-%.0f | %s | %s | %s |", label(threads).c_str(),
                      name.c_str(), attn.c_str(), dtype.c_str(), r.tokens_per_s, r.gflops, 100 * r.gflops / peak, peak,
                      before, after,
                      t > 0 ? std::to_string((int)t).c_str() : "-",
                      t > 0 ? (std::to_string(r.tokens_per_s / t).substr(0, 4) + "x").c_str() : "-",
                      dtype != "f32" && f32_tps > 0 ? (std::to_string(r.tokens_per_s / f32_tps).substr(0, 4) + "x").c_str()
                                                    : "-");
          if (stats)
            std::printf(" %+.1f%% +-%.1f | %+.1f%% +-%.1f |", 100 * r.stats_probe.value, 100 * r.stats_probe.error,
                        100 * r.stats_train.value, 100 * r.stats_train.error);
          std::printf("\n");
          std::fflush(stdout);
          char line[400];
          const double need = (double)(r.state_bytes + r.activation_bytes);
          std::snprintf(line, sizeof line,
                        "%s threads %s/%s/%s: %.1fM params; params+grads+AdamW %.0f MB + activations held for backward "
                        "%.0f MB; peak resident set %.0f MB = %.2fx (%.2fx beyond the %.0f MB held before it)",
                        label(threads).c_str(), name.c_str(), attn.c_str(), dtype.c_str(), r.params / 1e6, r.state_bytes / 1e6,
                        r.activation_bytes / 1e6, r.peak_rss / 1e6, r.peak_rss / need,
                        (r.peak_rss - r.rss_before) / need, r.rss_before / 1e6);
          memory_lines.push_back(line);
          if (stats)
            memory_lines.back() += " (" + std::to_string((int)(r.peak_rss_probe / 1e6)) + " MB = " +
                                   std::to_string(r.peak_rss_probe / need).substr(0, 4) + "x with the probe's too)";
          worst_ratio = std::max(worst_ratio, r.peak_rss / need);
          worst_beyond = std::max(worst_beyond, (r.peak_rss - r.rss_before) / need);
        }
      }
    }
  }
  if (stats)
    std::printf("\nstats.source = auto, the default, measures from %s on these shapes\n",
                stats_source(train::bench_config(train::bench_shape(shapes.at(0), vocab), "softmax", "f32", thread_counts.at(0))).c_str());
  std::printf("\nmemory:\n");
  for (auto& l : memory_lines) std::printf("  %s\n", l.c_str());
  std::printf("  worst: peak resident set %.2fx what the configuration needs (code, libraries, bf16 operand\n"
              "  copies and, with --stats, the default statistics included; each configuration measured from a\n"
              "  reset high-water mark); %.2fx counting only what it added to the resident set the process\n"
              "  held as it started (code, libraries, oneDNN's state)\n",
              worst_ratio, worst_beyond);
  return 0;
}

}  // namespace sl::cli
