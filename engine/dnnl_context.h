// The process-wide oneDNN CPU engine and stream, and a cache of primitives keyed by the
// op's shape signature: oneDNN primitive creation costs far more than a small execution.
#pragma once
#include <functional>
#include <string>

#include <oneapi/dnnl/dnnl.hpp>

namespace sl::dnnl_ctx {

dnnl::engine& engine();
dnnl::stream& stream();

// The primitive cached under `key` (and the current thread count), created by `make` on first use.
dnnl::primitive& cached(const std::string& key, const std::function<dnnl::primitive()>& make);

// Whether oneDNN has a bf16 matmul for this CPU (AVX512-BF16, AMX or AVX2-VNNI-2); without one it
// refuses to create the primitive, so the answer is asked of oneDNN itself, once.
bool bf16_matmul_supported();

}  // namespace sl::dnnl_ctx
