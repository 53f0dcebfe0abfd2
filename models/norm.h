// RMSNorm (LLaMA) or LayerNorm (GPT-2) with learned gain (and bias for LayerNorm).
#pragma once
#include <string>

#include "engine/ops.h"
#include "engine/params.h"

namespace sl::models {

class Norm {
 public:
  Norm() = default;
  Norm(const std::string& kind, int64_t dim, float eps, ParamStore& ps, const std::string& name);
  Tensor forward(const Tensor& x) const;
  // {h + y, norm(h + y)} in one pass (a residual add and the norm that reads the sum).
  ResidualNorm forward(const Tensor& h, const Tensor& y) const;

 private:
  bool rms_ = true;
  float eps_ = 1e-5f;
  Tensor weight_, bias_;
};

}  // namespace sl::models
