#include "train/distributed.h"

#include <algorithm>
#include <cstdlib>

#ifdef SINKLAB_MPI
#include <mpi.h>
#endif

namespace sl::train::dist {

#ifdef SINKLAB_MPI
// MPI starts only under a launcher (mpirun, srun): a plain run pays nothing for it.
static bool g_mpi = false;
void init(int* argc, char*** argv) {
  if (!std::getenv("OMPI_COMM_WORLD_SIZE") && !std::getenv("PMI_SIZE") && !std::getenv("PMIX_RANK")) return;
  MPI_Init(argc, argv);
  g_mpi = true;
}
void finalize() {
  if (g_mpi) MPI_Finalize();
}
int rank() {
  int r = 0;
  if (g_mpi) MPI_Comm_rank(MPI_COMM_WORLD, &r);
  return r;
}
int size() {
  int s = 1;
  if (g_mpi) MPI_Comm_size(MPI_COMM_WORLD, &s);
  return s;
}
// MPI counts are int: large buffers go in chunks.
template <class T>
static void allreduce(T* data, int64_t n, MPI_Datatype type) {
  if (size() == 1) return;
  const int64_t chunk = 1 << 30;
  for (int64_t off = 0; off < n; off += chunk)
    MPI_Allreduce(MPI_IN_PLACE, data + off, (int)std::min(chunk, n - off), type, MPI_SUM, MPI_COMM_WORLD);
}
void allreduce_sum(float* data, int64_t n) { allreduce(data, n, MPI_FLOAT); }
void allreduce_sum(double* data, int64_t n) { allreduce(data, n, MPI_DOUBLE); }
void broadcast(int64_t* data, int64_t n) {
  if (size() > 1) MPI_Bcast(data, (int)n, MPI_INT64_T, 0, MPI_COMM_WORLD);
}
void barrier() {
  if (size() > 1) MPI_Barrier(MPI_COMM_WORLD);
}
void abort(int code) {
  if (g_mpi) MPI_Abort(MPI_COMM_WORLD, code);
  std::exit(code);
}
#else
void barrier() {}
void abort(int code) { std::exit(code); }
void init(int*, char***) {}
void finalize() {}
int rank() { return 0; }
int size() { return 1; }
void allreduce_sum(float*, int64_t) {}
void allreduce_sum(double*, int64_t) {}
void broadcast(int64_t*, int64_t) {}
#endif

}  // namespace sl::train::dist
