#include "engine/params.h"

#include "engine/autograd.h"

namespace sl {

Tensor ParamStore::add(const std::string& name, const Shape& shape, Init init, bool weight_decay) {
  SL_CHECK(!finalized_, "parameter '" + name + "' declared after finalize()");
  SL_CHECK(!find(name), "parameter '" + name + "' declared twice");
  auto impl = std::make_shared<TensorImpl>();
  impl->shape = shape;
  impl->strides = contiguous_strides(shape);
  impl->requires_grad = true;
  Tensor t(impl);
  params_.push_back({name, t, init, weight_decay});
  return t;
}

void ParamStore::finalize(Rng& rng) {
  SL_CHECK(!finalized_, "ParamStore::finalize() called twice");
  int64_t off = 0;
  for (auto& p : params_) {
    p.offset = off;
    off += (p.value.numel() + 15) / 16 * 16;
  }
  flat_size_ = off;
  values_ = Tensor::zeros({off});
  grads_ = Tensor::zeros({off});
  for (auto& p : params_) {
    TensorImpl* v = p.value.impl();
    v->storage = values_.impl()->storage;
    v->offset = p.offset;
    auto g = std::make_shared<TensorImpl>();
    g->storage = grads_.impl()->storage;
    g->offset = p.offset;
    g->shape = v->shape;
    g->strides = v->strides;
    v->grad = g;
    float* d = p.value.data();
    int64_t n = p.value.numel();
    for (int64_t i = 0; i < n; ++i) {
      switch (p.init.kind) {
        case Init::Normal: d[i] = p.init.a * rng.normal(); break;
        case Init::Zeros: d[i] = 0.f; break;
        case Init::Ones: d[i] = 1.f; break;
        case Init::Constant: d[i] = p.init.a; break;
        case Init::Uniform: d[i] = (float)((2 * rng.uniform() - 1) * p.init.a); break;
      }
    }
  }
  finalized_ = true;
}

const Param* ParamStore::find(const std::string& name) const {
  for (auto& p : params_)
    if (p.name == name) return &p;
  return nullptr;
}

int64_t ParamStore::count() const {
  int64_t n = 0;
  for (auto& p : params_) n += p.value.numel();
  return n;
}

void ParamStore::zero_grad() { fill(grads_.data(), flat_size_, 0.f); }

}  // namespace sl
