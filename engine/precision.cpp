#include "engine/precision.h"

#include <atomic>

#include "engine/dnnl_context.h"
#include "engine/error.h"

namespace sl {

namespace {
std::atomic<MatmulPrecision> current{MatmulPrecision::f32};
}

void set_matmul_precision(MatmulPrecision p) {
  SL_CHECK(p != MatmulPrecision::bf16 || dnnl_ctx::bf16_matmul_supported(),
           "bf16 matrix products (train.dtype: bf16) need a CPU that oneDNN has a bf16 matmul for (AVX512-BF16, AMX "
           "or AVX2-VNNI-2), and this one has none: use train.dtype: f32");
  current.store(p);
}
MatmulPrecision matmul_precision() { return current.load(); }

MatmulPrecision parse_matmul_precision(const std::string& name) {
  if (name == "f32") return MatmulPrecision::f32;
  if (name == "bf16") return MatmulPrecision::bf16;
  throw Error("unknown matmul precision '" + name + "' (valid: f32, bf16)");
}

}  // namespace sl
