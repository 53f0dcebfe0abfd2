// Runs a sweep's runs as child processes, `jobs` at a time.
#include <fcntl.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

#include "engine/error.h"
#include "train/progress.h"
#include "train/sweep.h"

namespace fs = std::filesystem;

namespace sl::train {

namespace {

volatile std::sig_atomic_t g_stop = 0;
void on_stop(int sig) { g_stop = sig; }
void on_alarm(int) {}  // wakes waitpid to write the running runs' wall times

std::string shell_quote(const std::string& s) {
  if (!s.empty() && s.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./=,:+") ==
                        std::string::npos)
    return s;
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

std::string join_command(const std::vector<std::string>& cmd) {
  std::vector<std::string> quoted;
  for (auto& a : cmd) quoted.push_back(shell_quote(a));
  return join(quoted, " ");
}

// The last `lines` lines of a file.
std::string tail(const std::string& path, int lines) {
  std::ifstream in(path);
  std::deque<std::string> last;
  for (std::string l; std::getline(in, l);) {
    last.push_back(l);
    if ((int)last.size() > lines) last.pop_front();
  }
  std::string s;
  for (auto& l : last) s += "    " + l + "\n";
  return s;
}

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

double read_number(const std::string& path) {
  std::ifstream in(path);
  double v = 0;
  in >> v;
  return v;
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::trunc) << text;
}

// --pin: the CPUs of each of `jobs` slots, `threads` apiece in order from those this process may use.
std::vector<std::vector<int>> cpu_slots(int jobs, int threads) {
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  sched_getaffinity(0, sizeof allowed, &allowed);
  std::vector<int> cpus;
  for (int c = 0; c < CPU_SETSIZE; ++c)
    if (CPU_ISSET(c, &allowed)) cpus.push_back(c);
  SL_CHECK((int64_t)jobs * threads <= (int64_t)cpus.size(),
           "--pin gives each of the " + std::to_string(jobs) + " runs at a time its own " + std::to_string(threads) +
               " CPU(s): that needs " + std::to_string(jobs * threads) + " CPUs, and this process may use " +
               std::to_string(cpus.size()) + " (lower --jobs or --threads)");
  std::vector<std::vector<int>> slots(jobs);
  for (int k = 0; k < jobs; ++k) slots[k].assign(cpus.begin() + k * threads, cpus.begin() + (k + 1) * threads);
  return slots;
}

std::string cpu_list(const std::vector<int>& cpus) {
  std::vector<std::string> s;
  for (int c : cpus) s.push_back(std::to_string(c));
  return join(s, ",");
}

// Starts `cmd` with stdout appended to `out`, stderr replacing `err`, on `cpus` if any. The child
// gets SIGTERM (and so checkpoints) if the sweep dies.
pid_t spawn(const std::vector<std::string>& cmd, int threads, const std::vector<int>& cpus, const std::string& out,
            const std::string& err) {
  std::fflush(stdout);
  std::fflush(stderr);
  pid_t pid = fork();
  SL_CHECK(pid >= 0, std::string("fork failed: ") + std::strerror(errno));
  if (pid > 0) return pid;
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  int fo = open(out.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  int fe = open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fo >= 0) dup2(fo, 1);
  if (fe >= 0) dup2(fe, 2);
  int null = open("/dev/null", O_RDONLY);
  if (null >= 0) dup2(null, 0);
  setenv("OMP_NUM_THREADS", std::to_string(threads).c_str(), 1);
  if (!cpus.empty()) {  // the run's threads stay on its CPUs (train.pin_threads binds one to each)
    cpu_set_t set;
    CPU_ZERO(&set);
    for (int c : cpus) CPU_SET(c, &set);
    sched_setaffinity(0, sizeof set, &set);
  }
  std::vector<char*> argv;
  for (auto& a : cmd) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  execvp(argv[0], argv.data());
  std::fprintf(stderr, "cannot start %s: %s\n", argv[0], std::strerror(errno));
  _exit(127);
}

}  // namespace

int run_sweep(const Sweep& sw, const SweepOptions& opt, const std::string& exe) {
  int slots = 0;
  for (auto& h : opt.hosts) slots += h.slots;
  const int jobs = std::max(1, opt.hosts.empty() ? opt.jobs : std::min(opt.jobs > 1 ? opt.jobs : slots, slots));
  const int cores = (int)std::max(1L, sysconf(_SC_NPROCESSORS_ONLN));
  const int threads = opt.threads > 0 ? opt.threads : opt.hosts.empty() ? std::max(1, cores / jobs) : 1;

  SL_CHECK(!opt.pin || opt.hosts.empty(), "--pin places local runs; with --hostfile, mpirun places them");
  const std::vector<std::vector<int>> pinned = opt.pin ? cpu_slots(jobs, threads) : std::vector<std::vector<int>>{};
  std::vector<bool> slot_busy(pinned.size(), false);

  std::vector<size_t> todo;
  int finished = 0;
  for (size_t i = 0; i < sw.runs.size(); ++i) {
    if (opt.only >= 0 && (int)i != opt.only) continue;
    RunState s = run_state(sw.runs[i]);
    if (s == RunState::Finished) ++finished;
    else todo.push_back(i);
  }
  SL_CHECK(opt.only < (int)sw.runs.size(), "--only " + std::to_string(opt.only) + ": the sweep has " +
                                               std::to_string(sw.runs.size()) + " runs (0.." +
                                               std::to_string(sw.runs.size() - 1) + ")");
  const int total = opt.only >= 0 ? 1 : (int)sw.runs.size();
  std::printf("sweep %s: %d runs (%d finished, %zu to run), %d at a time, %d thread%s each%s -> %s\n", sw.name.c_str(),
              total, finished, todo.size(), jobs, threads, threads == 1 ? "" : "s",
              opt.pin ? ", each on its own CPUs" : "", sw.dir.c_str());
  if (!sw.claim.empty()) std::printf("claim: %s\n", sw.claim.c_str());

  // Host slots in use; local runs use the one unnamed host.
  std::vector<Host> hosts = opt.hosts.empty() ? std::vector<Host>{{"", jobs}} : opt.hosts;
  std::vector<int> busy(hosts.size(), 0);
  auto free_host = [&]() -> int {
    for (size_t h = 0; h < hosts.size(); ++h)
      if (busy[h] < hosts[h].slots) return (int)h;
    return -1;
  };

  if (opt.dry_run) {
    size_t h = 0;
    int used = 0;
    for (size_t k = 0; k < todo.size(); ++k) {
      const SweepRun& r = sw.runs[todo[k]];
      RunState s = run_state(r);
      const std::string cpus = pinned.empty() ? "" : "CPUs " + cpu_list(pinned[k % pinned.size()]) + ": ";
      std::printf("[%s] %s: %sOMP_NUM_THREADS=%d %s\n", state_name(s), r.name.c_str(), cpus.c_str(), threads,
                  join_command(run_command(sw, r, s, exe, threads, hosts[h].name)).c_str());
      if (++used == hosts[h].slots) used = 0, h = (h + 1) % hosts.size();
    }
    return 0;
  }

  fs::create_directories(sw.logs());
  // Without SA_RESTART, so that a stop signal interrupts waitpid.
  struct sigaction sa {};
  sa.sa_handler = on_stop;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  struct sigaction alarm_sa {};
  alarm_sa.sa_handler = on_alarm;
  sigaction(SIGALRM, &alarm_sa, nullptr);
  struct Running {
    size_t run;
    int host, slot;  // slot: of --pin, else -1
    std::chrono::steady_clock::time_point start;
    double wall_before;  // seconds of earlier invocations (logs/<run>.wall)
  };
  std::map<pid_t, Running> running;
  // Wall time accumulates over the invocations that ran (or resumed) a run.
  auto write_wall = [&](const Running& run) {
    write_text(sw.logs() + "/" + sw.runs[run.run].name + ".wall",
               std::to_string(run.wall_before + seconds_since(run.start)) + "\n");
  };
  std::vector<std::string> failures;
  int done = 0, failed = 0;
  double done_seconds = 0;
  size_t next = 0;
  const auto t0 = std::chrono::steady_clock::now();
  auto progress = [&]() {
    const double elapsed = seconds_since(t0);
    const size_t left = todo.size() - next + running.size();
    std::string eta = "-";
    if (done + failed > 0) eta = format_duration(done_seconds / (done + failed) * (double)left / jobs);
    std::printf("[sweep %s] %d/%d done, %d failed, %zu running, %zu pending | %s elapsed | ETA %s\n", sw.name.c_str(),
                finished + done, total, failed, running.size(), todo.size() - next, format_duration(elapsed).c_str(),
                eta.c_str());
    std::fflush(stdout);
  };

  bool stopping = false;
  while ((next < todo.size() && !g_stop) || !running.empty()) {
    if (g_stop && !stopping) {  // pass a stop signal on: the runs checkpoint and exit
      stopping = true;
      for (auto& [p, _] : running) kill(p, SIGTERM);
    }
    while (next < todo.size() && !g_stop && (int)running.size() < jobs && free_host() >= 0) {
      const SweepRun& r = sw.runs[todo[next++]];
      const RunState s = run_state(r);
      const int h = free_host();
      auto cmd = run_command(sw, r, s, exe, threads, hosts[h].name);
      write_text(sw.logs() + "/" + r.name + ".cmd", join_command(cmd) + "\n");
      const int slot =
          pinned.empty() ? -1 : (int)(std::find(slot_busy.begin(), slot_busy.end(), false) - slot_busy.begin());
      pid_t pid = spawn(cmd, threads, slot >= 0 ? pinned[slot] : std::vector<int>{}, sw.logs() + "/" + r.name + ".log",
                        sw.logs() + "/" + r.name + ".err");
      running[pid] = {todo[next - 1], h, slot, std::chrono::steady_clock::now(),
                      read_number(sw.logs() + "/" + r.name + ".wall")};
      ++busy[h];
      if (slot >= 0) slot_busy[slot] = true;
      std::printf("%s %s%s%s\n", s == RunState::Interrupted ? "resume" : "start", r.name.c_str(),
                  hosts[h].name.empty() ? "" : (" on " + hosts[h].name).c_str(),
                  slot >= 0 ? (" on CPUs " + cpu_list(pinned[slot])).c_str() : "");
    }
    progress();
    // An alarm wakes the wait every half minute to write each running run's wall time, so that a
    // sweep killed outright (a session's end) keeps what its runs had used.
    int status = 0;
    alarm(30);
    pid_t pid = waitpid(-1, &status, 0);
    alarm(0);
    if (pid < 0) {
      if (errno != EINTR) break;
      for (const auto& [p, run] : running) write_wall(run);
      continue;
    }
    auto it = running.find(pid);
    if (it == running.end()) continue;
    const SweepRun& r = sw.runs[it->second.run];
    const double secs = seconds_since(it->second.start);
    write_wall(it->second);
    --busy[it->second.host];
    if (it->second.slot >= 0) slot_busy[it->second.slot] = false;
    running.erase(it);
    const int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    write_text(sw.logs() + "/" + r.name + ".exit", std::to_string(code) + "\n");
    if (code == 0 && run_state(r) == RunState::Finished) {
      ++done;
      done_seconds += secs;
      std::printf("done %s (%s)\n", r.name.c_str(), format_duration(secs).c_str());
    } else if (g_stop) {
      std::printf("stopped %s (checkpointed; rerun the sweep to resume it)\n", r.name.c_str());
    } else {
      ++failed;
      done_seconds += secs;
      std::string msg = "FAILED " + r.name + " (exit " + std::to_string(code) + "); stderr tail (" + sw.logs() + "/" +
                        r.name + ".err):\n" + tail(sw.logs() + "/" + r.name + ".err", 8);
      failures.push_back(msg);
      std::printf("%s", msg.c_str());
    }
  }
  progress();
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
  if (g_stop) {
    std::printf("sweep %s stopped by signal %d; rerun the same command to continue\n", sw.name.c_str(), (int)g_stop);
    return -1;
  }
  for (auto& f : failures) std::printf("%s", f.c_str());
  return failed;
}

}  // namespace sl::train
