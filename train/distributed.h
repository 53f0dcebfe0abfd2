// Data-parallel training over MPI processes (Open MPI). Every rank holds the whole model,
// computes gradients on its share of the global batch, and the gradients are summed with
// one all-reduce over the flat gradient buffer. Built without MPI, these are the trivial
// one-process versions, so the trainer reads the same either way.
#pragma once
#include <cstdint>

namespace sl::train::dist {

void init(int* argc, char*** argv);  // MPI_Init when built with MPI (singleton without mpirun)
void finalize();
int rank();
int size();
inline bool root() { return rank() == 0; }
void allreduce_sum(float* data, int64_t n);
void allreduce_sum(double* data, int64_t n);
// rank 0's values replace every other rank's (e.g. a checkpoint step chosen on rank 0)
void broadcast(int64_t* data, int64_t n);
void barrier();
// Ends every process of the job (an error on one rank would leave the others waiting).
[[noreturn]] void abort(int code);

}  // namespace sl::train::dist
