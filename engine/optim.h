// Optimisers over a finalized ParamStore. They update the flat value buffer from the flat
// gradient buffer, one parameter range at a time (each parameter's flags decide weight decay
// and whether it trains at all). Weight decay is decoupled (AdamW, Loshchilov & Hutter):
// p -= lr * wd * p, applied only to parameters declared with weight_decay = true.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "engine/params.h"

namespace sl {

class Optimizer {
 public:
  explicit Optimizer(ParamStore& params);
  virtual ~Optimizer() = default;

  // One update with learning rate `lr` from the gradients now in the store.
  virtual void step(float lr) = 0;

  // The state tensors by name ("m", "v", "momentum"), flat over ParamStore::flat_size().
  // They alias the optimiser's buffers: a checkpoint saves them, and copying saved values
  // into them (with set_steps) restores the optimiser exactly.
  virtual std::vector<std::pair<std::string, Tensor>> state() = 0;

  // Updates taken so far (AdamW's bias correction uses it).
  int64_t steps() const { return steps_; }
  void set_steps(int64_t steps) { steps_ = steps; }

 protected:
  ParamStore& params_;
  int64_t steps_ = 0;
};

struct AdamWConfig {
  float beta1 = 0.9f;
  float beta2 = 0.95f;
  float eps = 1e-8f;
  float weight_decay = 0.1f;
};

// With t = steps() after this step, g the gradient:
//   m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2
//   p -= lr * ( (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps) + wd p )   (as torch.optim.AdamW)
class AdamW : public Optimizer {
 public:
  AdamW(ParamStore& params, AdamWConfig config);
  void step(float lr) override;
  std::vector<std::pair<std::string, Tensor>> state() override;
  const AdamWConfig& config() const { return config_; }

 private:
  AdamWConfig config_;
  Tensor m_, v_;
};

struct SGDConfig {
  float momentum = 0.f;
  float weight_decay = 0.f;
};

// b = mu b + g;  p -= lr * (b + wd p)   (momentum as torch.optim.SGD, nesterov off; no
// buffer and no state when mu = 0)
class SGD : public Optimizer {
 public:
  SGD(ParamStore& params, SGDConfig config);
  void step(float lr) override;
  std::vector<std::pair<std::string, Tensor>> state() override;

 private:
  SGDConfig config_;
  Tensor momentum_;
};

// Scales all trainable gradients so that their global L2 norm is at most max_norm (by
// max_norm / (norm + 1e-6), as torch.nn.utils.clip_grad_norm_) and returns the norm before
// clipping, summed in double. max_norm <= 0 only measures. A non-finite norm is returned
// unchanged and the gradients are left alone, so the caller can detect and skip the step.
float clip_grad_norm(ParamStore& params, float max_norm);

}  // namespace sl
