#include <catch2/catch.hpp>

#include "engine/params.h"
#include "train/distributed.h"

using namespace sl;
namespace dist = sl::train::dist;

// Needs two processes: hidden from plain runs, run by tests/python/test_mpi.py as
// `mpirun -np 2 sinklab_tests "[mpi]"`.
TEST_CASE("GradientReducer: ranks reporting gradients in different orders, or none, sum every bucket", "[.][mpi]") {
  dist::init(nullptr, nullptr);
  REQUIRE(dist::size() == 2);
  const int rank = dist::rank();
  ParamStore ps;
  std::vector<Tensor> p;
  for (int i = 0; i < 7; ++i) p.push_back(ps.add(std::to_string(i), {17 + 5 * i}, Init::zeros(), false));
  Rng rng(1);
  ps.finalize(rng);
  for (int64_t j = 0; j < ps.flat_size(); ++j) ps.grads()[j] = (float)((rank + 1) * (j + 1));
  {
    dist::GradientReducer reducer(ps, 64 * sizeof(float));  // two or three parameters a bucket
    REQUIRE(reducer.buckets() >= 3);
    if (rank == 0) {  // a backward: the last parameters first; p[2] gets no gradient (an unused expert)
      for (int i = 6; i >= 0; --i)
        if (i != 2) reducer.ready(p[i]);
    } else {  // out of order, then a non-finite loss: the rest is sent by finish()
      reducer.ready(p[0]);
      reducer.ready(p[6]);
      reducer.ready(p[6]);  // a repeat is ignored
    }
    reducer.finish();
  }
  int64_t wrong = 0;
  for (int64_t j = 0; j < ps.flat_size(); ++j) wrong += ps.grads()[j] != (float)(3 * (j + 1));
  CHECK(wrong == 0);
  double ranks = rank;  // and the ranks are still in step for the next collective
  dist::allreduce_sum(&ranks, 1);
  CHECK(ranks == 1);
  dist::finalize();
}
