#include "train/distributed.h"

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdlib>
#include <thread>

#include "engine/error.h"

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
int local_rank() {
  static const int r = [] {
    if (!g_mpi) return 0;
    MPI_Comm node;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node);
    int lr = 0;
    MPI_Comm_rank(node, &lr);
    MPI_Comm_free(&node);
    return lr;
  }();
  return r;
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
// Polls with naps instead of MPI_Barrier's busy wait, so that a rank that waits (while rank 0
// runs a child process, say) leaves its core to others.
void barrier() {
  if (size() == 1) return;
  MPI_Request req;
  MPI_Ibarrier(MPI_COMM_WORLD, &req);
  for (int done = 0; MPI_Test(&req, &done, MPI_STATUS_IGNORE), !done;) std::this_thread::sleep_for(std::chrono::milliseconds(1));
}
void abort(int code) {
  if (g_mpi) MPI_Abort(MPI_COMM_WORLD, code);
  std::exit(code);
}

struct GradientReducer::Requests {
  std::vector<MPI_Request> in_flight;
  void post(float* data, int64_t n) {
    SL_CHECK(n <= INT_MAX, "gradient bucket of " + std::to_string(n) + " floats exceeds MPI's int count");
    in_flight.emplace_back();
    MPI_Iallreduce(MPI_IN_PLACE, data, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, &in_flight.back());
  }
  void progress() {
    int done = 0;
    if (!in_flight.empty()) MPI_Testall((int)in_flight.size(), in_flight.data(), &done, MPI_STATUSES_IGNORE);
  }
  void wait() { MPI_Waitall((int)in_flight.size(), in_flight.data(), MPI_STATUSES_IGNORE); }
};
#else
struct GradientReducer::Requests {
  void post(float*, int64_t) {}
  void progress() {}
  void wait() {}
};
void barrier() {}
void abort(int code) { std::exit(code); }
void init(int*, char***) {}
void finalize() {}
int rank() { return 0; }
int size() { return 1; }
int local_rank() { return 0; }
void allreduce_sum(float*, int64_t) {}
void allreduce_sum(double*, int64_t) {}
void broadcast(int64_t*, int64_t) {}
#endif

GradientReducer::GradientReducer(ParamStore& ps, int64_t bucket_bytes)
    : grads_(ps.grads()), requests_(std::make_unique<Requests>()) {
  SL_CHECK(ps.finalized(), "GradientReducer needs a finalized ParamStore");
  const auto& params = ps.params();  // in flat order: offsets grow
  auto full = [&](const Bucket& b) { return (b.end - b.begin) * (int64_t)sizeof(float) >= bucket_bytes; };
  for (size_t i = params.size(); i-- > 0;) {
    const int64_t end = buckets_.empty() ? ps.flat_size() : buckets_.back().begin;
    if (buckets_.empty() || full(buckets_.back())) buckets_.push_back({end, end, 0});
    Bucket& b = buckets_.back();
    b.begin = params[i].offset;  // so the range covers the alignment padding after each parameter too
    ++b.unready;
    bucket_of_[params[i].value.impl()] = buckets_.size() - 1;
  }
  if (size() == 1) {  // nothing to sum
    buckets_.clear();
    bucket_of_.clear();
  }
}

GradientReducer::~GradientReducer() = default;

void GradientReducer::ready(const Tensor& param) {
  auto it = bucket_of_.find(param.impl());
  if (it == bucket_of_.end()) return;
  --buckets_[it->second].unready;
  bucket_of_.erase(it);
  post_complete_buckets();
  requests_->progress();
}

void GradientReducer::post_complete_buckets() {
  for (; posted_ < buckets_.size() && buckets_[posted_].unready == 0; ++posted_)
    requests_->post(grads_ + buckets_[posted_].begin, buckets_[posted_].end - buckets_[posted_].begin);
}

void GradientReducer::finish() {
  for (Bucket& b : buckets_) b.unready = 0;
  bucket_of_.clear();
  post_complete_buckets();
  requests_->wait();
}

}  // namespace sl::train::dist
