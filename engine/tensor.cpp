#include "engine/tensor.h"

#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <unordered_map>
#include <cstring>
#include <sstream>

#include "engine/error.h"

namespace sl {

std::string shape_str(const Shape& s) {
  std::ostringstream o;
  o << "[";
  for (size_t i = 0; i < s.size(); ++i) o << (i ? ", " : "") << s[i];
  o << "]";
  return o.str();
}

int64_t shape_numel(const Shape& s) {
  int64_t n = 1;
  for (auto d : s) n *= d;
  return n;
}

Shape contiguous_strides(const Shape& s) {
  Shape st(s.size());
  int64_t acc = 1;
  for (int64_t i = (int64_t)s.size() - 1; i >= 0; --i) {
    st[i] = acc;
    acc *= s[i];
  }
  return st;
}

// Buffers are recycled by exact size: a training step allocates the same shapes every time,
// so after the first step no allocation reaches malloc (or the kernel's page faults).
namespace {
struct Pool {
  std::mutex mu;
  std::unordered_map<size_t, std::vector<void*>> free;
  std::atomic<int64_t> live{0}, peak{0};
};
Pool& pool() {
  static Pool* p = new Pool;  // never destroyed: buffers may be released during static destruction
  return *p;
}
}  // namespace

int64_t Storage::live_bytes() { return pool().live.load(); }
int64_t Storage::peak_bytes() { return pool().peak.load(); }
void Storage::reset_peak() { pool().peak.store(pool().live.load()); }

int64_t Storage::pooled_bytes() {
  Pool& P = pool();
  std::lock_guard<std::mutex> lock(P.mu);
  int64_t total = 0;
  for (auto& [bytes, buffers] : P.free) total += (int64_t)(bytes * buffers.size());
  return total;
}

// Pool buffers of 2 MB or more are mapped on a 2 MB boundary with transparent huge pages asked
// for over their whole 2 MB pieces: a pass over activations then walks a few large pages instead
// of a TLB miss per 4 KB, and the CPU's prefetchers, which stop at page boundaries, run on. Mapped
// here rather than by malloc, so that release_free hands them back whole.
constexpr size_t kHugePage = size_t(2) << 20;

static size_t mapped_bytes(size_t bytes) { return (bytes + 4095) / 4096 * 4096; }

static void* fresh_buffer(size_t bytes) {
  if (bytes < kHugePage) return std::aligned_alloc(64, bytes);
  const size_t len = mapped_bytes(bytes);
  void* raw = mmap(nullptr, len + kHugePage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) return nullptr;
  char* start = reinterpret_cast<char*>((reinterpret_cast<uintptr_t>(raw) + kHugePage - 1) & ~(kHugePage - 1));
  const size_t head = start - static_cast<char*>(raw);
  if (head) munmap(raw, head);
  if (head < kHugePage) munmap(start + len, kHugePage - head);
  madvise(start, len / kHugePage * kHugePage, MADV_HUGEPAGE);  // advice: refused, pages stay small
  return start;
}

static void free_buffer(void* p, size_t bytes) {
  if (bytes < kHugePage) std::free(p);
  else munmap(p, mapped_bytes(bytes));
}

void Storage::release_free() {
  Pool& P = pool();
  std::lock_guard<std::mutex> lock(P.mu);
  for (auto& [bytes, buffers] : P.free)
    for (void* p : buffers) free_buffer(p, bytes);
  P.free.clear();
}

std::shared_ptr<Storage> Storage::allocate(int64_t n) {
  auto st = std::make_shared<Storage>();
  size_t bytes = ((size_t)std::max<int64_t>(n, 1) * sizeof(float) + 63) / 64 * 64;
  Pool& P = pool();
  void* p = nullptr;
  {
    std::lock_guard<std::mutex> lock(P.mu);
    auto it = P.free.find(bytes);
    if (it != P.free.end() && !it->second.empty()) {
      p = it->second.back();
      it->second.pop_back();
    }
  }
  if (!p) p = fresh_buffer(bytes);
  if (!p) throw Error("out of memory allocating " + std::to_string(bytes) + " bytes");
  int64_t live = P.live += (int64_t)bytes;
  int64_t peak = P.peak.load();
  while (live > peak && !P.peak.compare_exchange_weak(peak, live)) {
  }
  st->data = static_cast<float*>(p);
  st->size = n;
  st->owner = std::shared_ptr<void>(p, [bytes](void* q) {
    Pool& P = pool();
    P.live -= (int64_t)bytes;
    std::lock_guard<std::mutex> lock(P.mu);
    P.free[bytes].push_back(q);
  });
  return st;
}

static Tensor allocate(const Shape& shape) {
  for (auto d : shape) SL_CHECK(d >= 0, "negative dimension in shape " + shape_str(shape));
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = Storage::allocate(shape_numel(shape));
  impl->shape = shape;
  impl->strides = contiguous_strides(shape);
  return Tensor(impl);
}

Tensor Tensor::empty(const Shape& shape) { return allocate(shape); }

Tensor Tensor::zeros(const Shape& shape) { return full(shape, 0.f); }
Tensor Tensor::ones(const Shape& shape) { return full(shape, 1.f); }

void fill(float* p, int64_t n, float value) {
#pragma omp parallel for simd if (n > (1 << 16))
  for (int64_t i = 0; i < n; ++i) p[i] = value;
}

Tensor Tensor::full(const Shape& shape, float value) {
  Tensor t = allocate(shape);
  fill(t.data(), t.numel(), value);
  return t;
}

Tensor Tensor::from(const Shape& shape, const std::vector<float>& values) {
  SL_CHECK((int64_t)values.size() == shape_numel(shape),
           "Tensor::from: " + std::to_string(values.size()) + " values for shape " + shape_str(shape));
  Tensor t = allocate(shape);
  std::memcpy(t.data(), values.data(), values.size() * sizeof(float));
  return t;
}

int64_t Tensor::size(int64_t d) const {
  int64_t n = dim();
  if (d < 0) d += n;
  SL_CHECK(d >= 0 && d < n, "dimension " + std::to_string(d) + " out of range for shape " + shape_str(shape()));
  return impl_->shape[d];
}

bool Tensor::is_contiguous() const {
  int64_t acc = 1;
  for (int64_t i = dim() - 1; i >= 0; --i) {
    if (impl_->shape[i] != 1 && impl_->strides[i] != acc) return false;
    acc *= impl_->shape[i];
  }
  return true;
}

float Tensor::item() const {
  SL_CHECK(numel() == 1, "item() on a tensor of shape " + shape_str(shape()));
  return data()[0];
}

std::vector<float> Tensor::to_vector() const {
  Tensor c = is_contiguous() ? *this : contiguous();
  return std::vector<float>(c.data(), c.data() + c.numel());
}

Tensor Tensor::clone() const {
  if (!is_contiguous()) return detach().contiguous();  // a strided view's dense copy is new already
  Tensor out = Tensor::empty(shape());
  std::copy_n(data(), numel(), out.data());
  return out;
}

Tensor Tensor::detach() const {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = impl_->storage;
  impl->offset = impl_->offset;
  impl->shape = impl_->shape;
  impl->strides = impl_->strides;
  return Tensor(impl);
}

Tensor& Tensor::set_requires_grad(bool on) {
  impl_->requires_grad = on;
  return *this;
}

void Tensor::zero_grad() {
  if (impl_->grad) {
    Tensor g(impl_->grad);
    fill(g.data(), g.numel(), 0.f);
  }
}

Tensor make_view(const Tensor& base, const Shape& shape, const Shape& strides, int64_t offset) {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = base.impl()->storage;
  impl->offset = offset;
  impl->shape = shape;
  impl->strides = strides;
  return Tensor(impl);
}

}  // namespace sl
