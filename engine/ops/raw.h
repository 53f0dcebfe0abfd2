// Raw kernels (no autograd) shared by the ops and by fused ops that call oneDNN directly.
#pragma once
#include <oneapi/dnnl/dnnl.hpp>

#include "engine/tensor.h"

namespace sl {

// c[..., M, N] = alpha * a[..., M, K] @ b[..., K, N] (+ bias[N])   (+ c if accumulate), on views
// outside the autograd graph. a, b and c may be strided (c's strides are honoured); b is 2-D
// or has a's batch dims. a and b are read in the matmul precision (engine/precision.h); c and
// bias are fp32. (ops/matmul.cpp)
void gemm(Tensor a, Tensor b, Tensor c, const float* bias, bool accumulate, float alpha = 1.f);

// t with its last two dimensions swapped: a strided view without autograd history, for the
// transposed operands of gemm. (ops/matmul.cpp)
Tensor mT(const Tensor& t);

// y = softmax (or log-softmax, by `alg`) of each of `rows` rows of length D; y may be x.
// (ops/softmax.cpp)
void softmax_rows(const float* x, float* y, int64_t rows, int64_t D, dnnl::algorithm alg);

}  // namespace sl
