#include "engine/threads.h"

#include <omp.h>
#include <sched.h>

#include <exception>
#include <vector>

namespace sl {
void set_num_threads(int n) {
  if (n > 0) omp_set_num_threads(n);
}
int num_threads() { return omp_get_max_threads(); }

void pin_threads(bool on, int first) {
  static const cpu_set_t allowed = [] {  // as the process started, before any pinning
    cpu_set_t s;
    CPU_ZERO(&s);
    sched_getaffinity(0, sizeof s, &s);
    return s;
  }();
  std::vector<int> cpus;
  for (int c = 0; c < CPU_SETSIZE; ++c)
    if (CPU_ISSET(c, &allowed)) cpus.push_back(c);
  if (cpus.empty()) return;
#pragma omp parallel
  {
    cpu_set_t s = allowed;
    if (on) {
      CPU_ZERO(&s);
      CPU_SET(cpus[(first + omp_get_thread_num()) % cpus.size()], &s);
    }
    sched_setaffinity(0, sizeof s, &s);  // 0: the calling thread
  }
}

void parallel_tasks(int64_t n, const std::function<void(int64_t)>& f) {
  std::vector<std::exception_ptr> errors(n);
#pragma omp parallel for schedule(dynamic, 1) if (n > 1)
  for (int64_t i = 0; i < n; ++i) {
    try {
      f(i);
    } catch (...) {
      errors[i] = std::current_exception();
    }
  }
  for (const std::exception_ptr& e : errors)
    if (e) std::rethrow_exception(e);
}
}  // namespace sl
