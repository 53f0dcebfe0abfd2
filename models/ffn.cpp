#include "models/ffn.h"

namespace sl::models {

bool ffn_is_gated(const std::string& kind) { return kind == "swiglu" || kind == "geglu" || kind == "reglu"; }

FFN::FFN(const FFNConfig& c, ParamStore& ps, const std::string& name) : cfg_(c) {
  SL_CHECK(c.kind == "swiglu" || c.kind == "geglu" || c.kind == "reglu" || c.kind == "gelu" || c.kind == "relu" ||
               c.kind == "silu",
           "ffn: unknown kind '" + c.kind + "' (valid: swiglu, geglu, reglu, gelu, relu, silu)");
  w1_ = ps.add(name + ".w1", {c.d_ff, c.d_model}, Init::normal(c.init_std), true);
  w2_ = ps.add(name + ".w2", {c.d_model, c.d_ff}, Init::normal(c.out_init_std), true);
  if (ffn_is_gated(c.kind)) w3_ = ps.add(name + ".w3", {c.d_ff, c.d_model}, Init::normal(c.init_std), true);
  if (c.bias) {
    b1_ = ps.add(name + ".b1", {c.d_ff}, Init::zeros(), false);
    b2_ = ps.add(name + ".b2", {c.d_model}, Init::zeros(), false);
    if (w3_.defined()) b3_ = ps.add(name + ".b3", {c.d_ff}, Init::zeros(), false);
  }
}

Tensor FFN::activation(const Tensor& h) const {
  const std::string& k = cfg_.kind;
  if (k == "swiglu" || k == "silu") return silu(h);
  if (k == "geglu" || k == "gelu") return gelu(h);
  return relu(h);
}

Tensor FFN::forward(const Tensor& x) const {
  if (cfg_.kind == "swiglu") {  // the gate x W1^T and the value x W3^T from one product of the stacked [W1; W3]
    const Tensor b13 = b1_.defined() ? concat({b1_, b3_}, 0) : Tensor();
    return linear(swiglu(linear(x, concat({w1_, w3_}, 0), b13)), w2_, b2_);
  }
  Tensor h = activation(linear(x, w1_, b1_));
  if (w3_.defined()) h = mul(h, linear(x, w3_, b3_));
  return linear(h, w2_, b2_);
}

}  // namespace sl::models
