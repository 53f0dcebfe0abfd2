// Data-parallel training over MPI processes (Open MPI). Every rank holds the whole model,
// computes gradients on its share of the global batch, and the flat gradient buffer is summed
// across ranks in buckets while the backward still runs (GradientReducer). Built without MPI,
// these are the trivial one-process versions, so the trainer reads the same either way.
#pragma once
#include <cstdint>
#include <memory>
#include <unordered_map>
#include <vector>

#include "engine/params.h"

namespace sl::train::dist {

void init(int* argc, char*** argv);  // MPI_Init when built with MPI (singleton without mpirun)
void finalize();
int rank();
int size();
int local_rank();  // the rank among the processes on this machine (0 without MPI)
inline bool root() { return rank() == 0; }
void allreduce_sum(float* data, int64_t n);
void allreduce_sum(double* data, int64_t n);
// rank 0's values replace every other rank's (e.g. a checkpoint step chosen on rank 0)
void broadcast(int64_t* data, int64_t n);
void barrier();  // without a busy wait
// Ends every process of the job (an error on one rank would leave the others waiting).
[[noreturn]] void abort(int code);

// Sums the flat gradient buffer across processes while the backward still runs. The buffer is
// cut at parameter boundaries into buckets of at least `bucket_bytes`, taken from its end (the
// last layers, whose gradients are final first in the backward) towards its start. A bucket's
// in-place MPI_Iallreduce is posted once all its parameters are ready() and every bucket before it
// has been posted: so every rank posts the same collectives in the same order whatever its
// backward did, as MPI requires. finish() posts the rest (parameters that got no gradient, such as
// unused experts; all of them on a rank that skipped its backward) and waits for all. Single use:
// one reducer per step. With one process (or without MPI) it sends nothing.
class GradientReducer {
 public:
  GradientReducer(ParamStore& ps, int64_t bucket_bytes);
  ~GradientReducer();
  GradientReducer(const GradientReducer&) = delete;
  GradientReducer& operator=(const GradientReducer&) = delete;

  // `param`'s gradient is final: posts the buckets that became complete, and lets the ones in
  // flight progress (MPI progresses non-blocking collectives only inside MPI calls). Tensors that
  // are not parameters of the store, and repeated calls, are ignored.
  void ready(const Tensor& param);
  // Posts every bucket not yet posted and waits until all are summed.
  void finish();

  int64_t buckets() const { return (int64_t)buckets_.size(); }

 private:
  struct Bucket {
    int64_t begin, end;  // range of the flat gradient buffer, in floats
    int unready;         // parameters in it whose gradient is not final yet
  };
  struct Requests;  // the MPI requests in flight

  void post_complete_buckets();

  float* grads_;
  std::vector<Bucket> buckets_;  // in posting order: from the end of the buffer
  std::unordered_map<const TensorImpl*, size_t> bucket_of_;  // parameters not yet ready
  size_t posted_ = 0;
  std::unique_ptr<Requests> requests_;
};

}  // namespace sl::train::dist
