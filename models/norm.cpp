#include "models/norm.h"

namespace sl::models {

Norm::Norm(const std::string& kind, int64_t dim, float eps, ParamStore& ps, const std::string& name)
    : rms_(kind == "rmsnorm"), eps_(eps) {
  SL_CHECK(kind == "rmsnorm" || kind == "layernorm", "norm: unknown kind '" + kind + "' (valid: rmsnorm, layernorm)");
  weight_ = ps.add(name + ".weight", {dim}, Init::ones(), false);
  if (!rms_) bias_ = ps.add(name + ".bias", {dim}, Init::zeros(), false);
}

Tensor Norm::forward(const Tensor& x) const {
  return rms_ ? rms_norm(x, weight_, eps_) : layer_norm(x, weight_, bias_, eps_);
}

ResidualNorm Norm::forward(const Tensor& h, const Tensor& y) const {
  return rms_ ? add_rms_norm(h, y, weight_, eps_) : add_layer_norm(h, y, weight_, bias_, eps_);
}

}  // namespace sl::models
