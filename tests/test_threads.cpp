// parallel_tasks: each task runs once, on more than one thread, and a task's exception reaches
// the caller after the others have run.
#include <catch2/catch.hpp>
#include <omp.h>

#include <atomic>
#include <chrono>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

#include "engine/threads.h"

using namespace sl;

TEST_CASE("parallel_tasks runs each task once, spread over the threads", "[threads]") {
  REQUIRE(num_threads() >= 2);  // the suite runs at OMP_NUM_THREADS=2
  std::vector<std::atomic<int>> runs(7);
  std::vector<int> thread_of(7, -1);
  parallel_tasks(7, [&](int64_t i) {
    ++runs[i];
    thread_of[i] = omp_get_thread_num();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // long enough that one thread cannot take them all
  });
  for (const auto& r : runs) CHECK(r == 1);
  CHECK(std::set<int>(thread_of.begin(), thread_of.end()).size() >= 2);
  parallel_tasks(0, [](int64_t) { FAIL("no task to run"); });
}

TEST_CASE("parallel_tasks rethrows the lowest failing task's exception after every task ran", "[threads]") {
  std::atomic<int> ran{0};
  auto tasks = [&](int64_t i) {
    ++ran;
    if (i == 5) throw std::runtime_error("task 5");
    if (i == 2) {  // the later to throw
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      throw std::runtime_error("task 2");
    }
  };
  CHECK_THROWS_WITH(parallel_tasks(8, tasks), "task 2");
  CHECK(ran == 8);
}
