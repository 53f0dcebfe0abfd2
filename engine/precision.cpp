#include "engine/precision.h"

#include <atomic>

#include "engine/error.h"

namespace sl {

namespace {
std::atomic<MatmulPrecision> current{MatmulPrecision::f32};
}

void set_matmul_precision(MatmulPrecision p) { current.store(p); }
MatmulPrecision matmul_precision() { return current.load(); }

MatmulPrecision parse_matmul_precision(const std::string& name) {
  if (name == "f32") return MatmulPrecision::f32;
  if (name == "bf16") return MatmulPrecision::bf16;
  throw Error("unknown matmul precision '" + name + "' (valid: f32, bf16)");
}

}  // namespace sl
