#include "engine/dnnl_context.h"

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
  std::lock_guard<std::mutex> lock(mu);
  auto it = cache.find(key);
  if (it == cache.end()) it = cache.emplace(key, make()).first;
  return it->second;
}

}  // namespace sl::dnnl_ctx
