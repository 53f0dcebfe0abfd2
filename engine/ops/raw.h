// Raw kernels (no autograd) shared by the ops and by fused ops that call oneDNN directly.
#pragma once
#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <oneapi/dnnl/dnnl.hpp>

#include "engine/row_math.h"
#include "engine/tensor.h"
#include "engine/threads.h"

namespace sl {

// The bf16 rounding of the floats [from, from + n) laid out as they lie: every view inside that
// stretch (a block of rows, a transpose) is a bf16 matmul operand without converting again.
// Empty (and ignored by gemm) in f32 precision. (ops/matmul.cpp)
struct Bf16Image {
  const float* from = nullptr;
  int64_t n = 0;
  std::shared_ptr<Storage> bf16;
};
Bf16Image bf16_image(const Tensor& t);  // of the stretch t spans, when the precision is bf16
// The image of all of t's storage, made once and kept with it when t is an op's output in the
// graph being recorded (its values are final: backward reads them too): x feeds the q, k and v
// products and, in the backward, dW = dY^T x; gemm finds a kept image by itself. For any other
// t, a plain image.
Bf16Image bf16_image_kept(const Tensor& t);
// An image of dense t left for the caller to fill with round_to_bf16, by the loop that writes t
// (saving gemm a pass of its own over t); empty in f32 precision.
Bf16Image bf16_image_to_fill(const Tensor& t);
// The same, kept with t's storage as bf16_image_kept's are (gemm and bf16_image then find it),
// when `keep`: t is a new tensor that the loop writes whole with final values, an op's output in
// the graph being recorded or a gradient's first contribution (grad_of and grad_slot drop the
// image when a later contribution changes the gradient). Empty otherwise (in f32 precision, or
// when t does not span its storage).
Bf16Image bf16_image_kept_to_fill(const Tensor& t, bool keep);
// y[0, n) = x[0, n) rounded to the nearest bf16, ties to even; NaN stays NaN.
void round_to_bf16(const float* x, uint16_t* y, int64_t n);
// An image's bf16 values to fill, or null for an empty image.
inline uint16_t* bf16_values(const Bf16Image& image) {
  return image.bf16 ? reinterpret_cast<uint16_t*>(image.bf16->data) : nullptr;
}

// c[..., M, N] = alpha * a[..., M, K] @ b[..., K, N] (+ bias[N])   (+ c if accumulate), on views
// outside the autograd graph. a, b and c may be strided (c's strides are honoured); b is 2-D
// or has a's batch dims. a and b are read in the matmul precision (engine/precision.h), from
// a16 / b16 or a kept image where those cover them, else converted here; c and bias are fp32.
// (ops/matmul.cpp)
void gemm(Tensor a, Tensor b, Tensor c, const float* bias, bool accumulate, float alpha = 1.f,
          const Bf16Image& a16 = {}, const Bf16Image& b16 = {});

// sum, which the caller has filled with a + b (three dense tensors of one shape, a and b as the
// op reads them), recorded as add(a, b): for a fused op that writes a sum on its way to
// something else. (ops/arith.cpp)
Tensor record_add(Tensor sum, const Tensor& a, const Tensor& b);

// t with its last two dimensions swapped: a strided view without autograd history, for the
// transposed operands of gemm. (ops/matmul.cpp)
Tensor mT(const Tensor& t);

// The rows [r0, r1) of a 2-D tensor: a view, for gemm on a block of rows. (ops/matmul.cpp)
Tensor rows_of(const Tensor& t, int64_t r0, int64_t r1);

// y = softmax (or log-softmax, by `alg`) of each of `rows` rows of length D; y may be x.
// (ops/softmax.cpp)
void softmax_rows(const float* x, float* y, int64_t rows, int64_t D, dnnl::algorithm alg);

// dst[i] = v(i) for i in [0, n), or dst[i] += v(i) unless `first` (a gradient's first
// contribution goes into a new, uninitialised buffer: see grad_slot); on all threads for large n
// unless called inside a parallel region (a row of a parallel loop), where a region per call
// would cost more than the row. With `image` (bf16_image_kept_to_fill), dst's final values are
// rounded into it as they are written.
template <class V>
void assign_or_add(float* dst, int64_t n, bool first, const V& v, uint16_t* image = nullptr) {
  auto run = [dst, first, image](const V& f, int64_t i0, int64_t i1) {
    if (first) {
#pragma omp simd
      for (int64_t i = i0; i < i1; ++i) dst[i] = f(i);
    } else {
#pragma omp simd
      for (int64_t i = i0; i < i1; ++i) dst[i] += f(i);
    }
    if (image) round_to_bf16(dst + i0, image + i0, i1 - i0);
  };
  if (n <= kParallelMin || omp_in_parallel()) return run(v, 0, n);
  constexpr int64_t kChunk = 4096;
#pragma omp parallel for
  for (int64_t c = 0; c < n; c += kChunk) {
    // The thread's own copy of v: read through the shared closure, whose pointers a store to dst
    // might change, the compiler reloads them per lane and the loads become gathers.
    const V f = v;
    run(f, c, std::min(n, c + kChunk));
  }
}

}  // namespace sl
