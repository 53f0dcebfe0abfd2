#include "engine/dnnl_context.h"

#include <omp.h>

#include <mutex>
#include <unordered_map>

namespace sl::dnnl_ctx {

dnnl::engine& engine() {
  static dnnl::engine e(dnnl::engine::kind::cpu, 0);
  return e;
}

dnnl::stream& stream() {
  static dnnl::stream s(engine());
  return s;
}

dnnl::primitive& cached(const std::string& key, const std::function<dnnl::primitive()>& make) {
  static std::unordered_map<std::string, dnnl::primitive> cache;
  static std::mutex mu;
  // oneDNN fixes a primitive's work split at creation for the thread count of that moment.
  const std::string k = key + "@" + std::to_string(omp_get_max_threads());
  std::lock_guard<std::mutex> lock(mu);
  auto it = cache.find(k);
  if (it == cache.end()) it = cache.emplace(k, make()).first;
  return it->second;
}

bool bf16_matmul_supported() {
  static const bool supported = [] {
    using dt = dnnl::memory::data_type;
    const auto md = [](dt t) { return dnnl::memory::desc({16, 16}, t, dnnl::memory::format_tag::ab); };
    try {
      dnnl::matmul::primitive_desc(dnnl::matmul::desc(md(dt::bf16), md(dt::bf16), md(dt::f32)), engine());
      return true;
    } catch (const dnnl::error&) {
      return false;
    }
  }();
  return supported;
}

}  // namespace sl::dnnl_ctx
