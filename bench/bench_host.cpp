// What one core of the host sustains: arithmetic in registers, a stream through its L2 and a
// stream through memory. Run once alone and once on every core at the same time, it tells how
// much of a sweep's shortfall against N x one run alone the host itself imposes: a lower clock
// with every core busy shows in the first, a shared memory system in the last.
// usage: bench_host [SECONDS per measurement, default 2]   (one thread)
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

namespace {

using clock_type = std::chrono::steady_clock;

double seconds_since(clock_type::time_point t0) {
  return std::chrono::duration<double>(clock_type::now() - t0).count();
}

// Rounds of `pass` until `budget` seconds have gone; returns the rounds per second.
template <class F>
double rate(double budget, F pass) {
  pass();  // warm: pages touched, caches filled
  const auto t0 = clock_type::now();
  long rounds = 0;
  while (seconds_since(t0) < budget) pass(), ++rounds;
  return rounds / seconds_since(t0);
}

// 12 independent chains of the widest native vector, unrolled so that they live in registers (a
// loop over an array in memory would measure store forwarding instead).
#ifdef __AVX512F__
constexpr int kLanes = 16;
#else
constexpr int kLanes = 8;
#endif
using vec = float __attribute__((vector_size(4 * kLanes)));

double fma_gflops(double budget) {
  constexpr int kChains = 12;
  constexpr long kSteps = 1 << 20;
  vec acc[kChains];
  for (int c = 0; c < kChains; ++c) acc[c] = vec{} + (1.f + c * 1e-6f);
  const vec a = vec{} + 0.999999f, b = vec{} + 1e-7f;
  double r = rate(budget, [&] {
    vec x[kChains];
#pragma GCC unroll 12
    for (int c = 0; c < kChains; ++c) x[c] = acc[c];
    for (long s = 0; s < kSteps; ++s) {
#pragma GCC unroll 12
      for (int c = 0; c < kChains; ++c) x[c] = x[c] * a + b;
    }
#pragma GCC unroll 12
    for (int c = 0; c < kChains; ++c) acc[c] = x[c];
  });
  float sink = 0;
  for (const vec& x : acc) sink += x[0];
  if (sink == 0) std::puts("");  // keeps the chains live
  return r * 2.0 * kLanes * kChains * kSteps / 1e9;
}

// a = b + s c over three arrays of n floats: 12 bytes a float moved (the store's read for
// ownership not counted).
double triad_gbs(double budget, size_t n) {
  std::vector<float> a(n), b(n, 1.f), c(n, 2.f);
  float* pa = a.data();
  const float *pb = b.data(), *pc = c.data();
  double r = rate(budget, [&] {
#pragma omp simd
    for (size_t i = 0; i < n; ++i) pa[i] = pb[i] + 0.5f * pc[i];
  });
  if (a[n / 2] != 2.f) {
    std::fprintf(stderr, "bench_host: the triad computed %g, not 2\n", a[n / 2]);
    std::exit(1);
  }
  return r * 12.0 * n / 1e9;
}

}  // namespace

int main(int argc, char** argv) {
  const double budget = argc > 1 ? std::atof(argv[1]) : 2.0;
  std::printf("fma %.1f GFLOP/s\n", fma_gflops(budget));
  // 3 x 256 KB: within the device's 2 MB L2 (on a core of 512 KB, as Zen 3's, it reaches L3)
  std::printf("l2 %.1f GB/s\n", triad_gbs(budget, 256 << 10 >> 2));
  std::printf("memory %.1f GB/s\n", triad_gbs(budget, 64 << 20 >> 2));  // 3 x 64 MB
  return 0;
}
