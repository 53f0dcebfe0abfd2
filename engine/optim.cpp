#include "engine/optim.h"

#include <cmath>

#include "engine/error.h"

namespace sl {

namespace {

// Below this many elements a parameter is updated by one thread (fork/join costs more).
constexpr int64_t kParallelThreshold = 1 << 14;

}  // namespace

Optimizer::Optimizer(ParamStore& params) : params_(params) {
  SL_CHECK(params.finalized(), "optimiser created before ParamStore::finalize()");
}

AdamW::AdamW(ParamStore& params, AdamWConfig config)
    : Optimizer(params),
      config_(config),
      m_(Tensor::zeros({params.flat_size()})),
      v_(Tensor::zeros({params.flat_size()})) {
  SL_CHECK(config.beta1 >= 0 && config.beta1 < 1 && config.beta2 >= 0 && config.beta2 < 1,
           "AdamW betas must lie in [0, 1), got " + std::to_string(config.beta1) + ", " +
               std::to_string(config.beta2));
}

void AdamW::step(float lr) {
  const int64_t t = ++steps_;
  const float b1 = config_.beta1, b2 = config_.beta2, eps = config_.eps;
  const float bias1 = (float)(1.0 - std::pow((double)b1, (double)t));
  const float bias2 = (float)(1.0 - std::pow((double)b2, (double)t));
  float* p = params_.values();
  const float* g = params_.grads();
  float* m = m_.data();
  float* v = v_.data();
  const std::vector<Param>& all = params_.params();
  // One parallel region for all parameters, each split among the threads without a barrier.
#pragma omp parallel if (params_.flat_size() > kParallelThreshold)
  for (const Param& param : all) {
    if (!param.trainable) continue;
    const float decay = param.weight_decay ? config_.weight_decay : 0.f;
    const int64_t begin = param.offset, end = param.offset + param.value.numel();
#pragma omp for simd nowait
    for (int64_t i = begin; i < end; ++i) {
      m[i] = b1 * m[i] + (1 - b1) * g[i];
      v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
      const float update = (m[i] / bias1) / (std::sqrt(v[i] / bias2) + eps);
      p[i] -= lr * (update + decay * p[i]);
    }
  }
}

std::vector<std::pair<std::string, Tensor>> AdamW::state() { return {{"m", m_}, {"v", v_}}; }

SGD::SGD(ParamStore& params, SGDConfig config) : Optimizer(params), config_(config) {
  if (config.momentum != 0.f) momentum_ = Tensor::zeros({params.flat_size()});
}

void SGD::step(float lr) {
  ++steps_;
  const float mu = config_.momentum;
  float* p = params_.values();
  const float* g = params_.grads();
  float* b = momentum_.defined() ? momentum_.data() : nullptr;
  for (const Param& param : params_.params()) {
    if (!param.trainable) continue;
    const float decay = param.weight_decay ? config_.weight_decay : 0.f;
    const int64_t begin = param.offset, end = param.offset + param.value.numel();
#pragma omp parallel for if (end - begin > kParallelThreshold)
    for (int64_t i = begin; i < end; ++i) {
      float direction = g[i];
      if (b) direction = b[i] = mu * b[i] + g[i];
      p[i] -= lr * (direction + decay * p[i]);
    }
  }
}

std::vector<std::pair<std::string, Tensor>> SGD::state() {
  if (!momentum_.defined()) return {};
  return {{"momentum", momentum_}};
}

float clip_grad_norm(ParamStore& params, float max_norm) {
  SL_CHECK(params.finalized(), "clip_grad_norm before ParamStore::finalize()");
  float* g = params.grads();
  double sum_sq = 0;
  for (const Param& param : params.params()) {
    if (!param.trainable) continue;
    const int64_t begin = param.offset, end = param.offset + param.value.numel();
#pragma omp parallel for simd reduction(+ : sum_sq) if (end - begin > kParallelThreshold)
    for (int64_t i = begin; i < end; ++i) sum_sq += (double)g[i] * g[i];
  }
  const double norm = std::sqrt(sum_sq);
  if (max_norm > 0 && std::isfinite(norm) && norm > max_norm) {
    const float scale = (float)(max_norm / (norm + 1e-6));
    for (const Param& param : params.params()) {
      if (!param.trainable) continue;
      const int64_t begin = param.offset, end = param.offset + param.value.numel();
#pragma omp parallel for if (end - begin > kParallelThreshold)
      for (int64_t i = begin; i < end; ++i) g[i] *= scale;
    }
  }
  return (float)norm;
}

}  // namespace sl
