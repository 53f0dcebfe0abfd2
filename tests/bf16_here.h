// bf16 cases need a CPU that oneDNN has a bf16 matmul for. On one without, a case checks instead
// that asking for bf16 products is refused with the reason, and says that it ran none.
#pragma once
#include <catch2/catch.hpp>

#include "engine/dnnl_context.h"
#include "engine/precision.h"
#include "tests/error_of.h"

namespace sl::testing {

inline bool bf16_here() {
  if (dnnl_ctx::bf16_matmul_supported()) return true;
  const std::string e = error_of([] { set_matmul_precision(MatmulPrecision::bf16); });
  CHECK_THAT(e, Catch::Contains("AVX512-BF16") && Catch::Contains("train.dtype: f32"));
  CHECK(matmul_precision() == MatmulPrecision::f32);
  WARN("no bf16 matmul on this CPU: bf16 refused, no bf16 products checked");
  return false;
}

}  // namespace sl::testing
