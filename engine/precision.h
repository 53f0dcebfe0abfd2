// The precision of matrix products, process-wide. bf16 rounds the two operands of every gemm
// (matmul, linear, fused attention) to bfloat16 and accumulates and writes in fp32; parameters,
// gradients, optimiser state and every other op stay fp32 (fp32 master weights).
#pragma once
#include <string>

namespace sl {

enum class MatmulPrecision { f32, bf16 };

void set_matmul_precision(MatmulPrecision p);
MatmulPrecision matmul_precision();

// "f32" or "bf16" (the values of train.dtype); anything else is an sl::Error.
MatmulPrecision parse_matmul_precision(const std::string& name);

}  // namespace sl
