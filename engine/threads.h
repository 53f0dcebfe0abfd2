// Thread count for OpenMP loops and oneDNN (which runs on the same OpenMP runtime).
#pragma once
#include <cstdint>
#include <functional>

namespace sl {
// Elements below which a parallel loop's thread start-up costs more than it saves.
constexpr int64_t kParallelMin = 32768;
// n <= 0 keeps OMP_NUM_THREADS (or the OpenMP default).
void set_num_threads(int n);
int num_threads();
// Binds OpenMP thread i of the current team size to the (first + i)-th CPU this process may use
// (as OMP_PROC_BIND=close with one place per CPU; `first` keeps the processes of a data-parallel
// job on distinct CPUs), or lets every thread float again. A step is a
// chain of parallel regions, each waiting for its slowest thread, and a thread the kernel
// migrates stalls them all, which pinning avoids. Only for a process
// that has the machine to itself: processes that share it would pile onto the same CPUs. Call
// after set_num_threads.
void pin_threads(bool on, int first = 0);
// f(i) for each i in [0, n), spread over the threads a task at a time (for a few tasks of uneven
// size; a loop inside f runs on its task's thread). Once every task has finished, the exception of the
// lowest i that threw one is rethrown.
void parallel_tasks(int64_t n, const std::function<void(int64_t)>& f);
}  // namespace sl
