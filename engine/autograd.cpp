#include "engine/autograd.h"

#include "engine/profile.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <unordered_set>

namespace sl {

static thread_local bool g_grad_enabled = true;

bool grad_enabled() { return g_grad_enabled; }
NoGrad::NoGrad() : prev_(g_grad_enabled) { g_grad_enabled = false; }
NoGrad::~NoGrad() { g_grad_enabled = prev_; }

static thread_local OnLeafGrad* g_on_leaf_grad = nullptr;
OnLeafGrad::OnLeafGrad(std::function<void(const Tensor&)> fn) : fn_(std::move(fn)), prev_(g_on_leaf_grad) {
  g_on_leaf_grad = this;
}
OnLeafGrad::~OnLeafGrad() { g_on_leaf_grad = prev_; }

bool recording(std::initializer_list<Tensor> inputs) {
  return g_grad_enabled && std::any_of(inputs.begin(), inputs.end(), [](const Tensor& t) { return needs_grad(t); });
}

Tensor record(Tensor out, const char* op, std::vector<Tensor> inputs, BackwardFn fn) {
  if (profile::enabled()) profile::add_forward(op);
  if (!g_grad_enabled || std::none_of(inputs.begin(), inputs.end(), [](const Tensor& t) { return needs_grad(t); }))
    return out;
  auto node = std::make_shared<Node>();
  node->op = op;
  node->inputs = std::move(inputs);
  node->backward = std::move(fn);
  out.impl()->requires_grad = true;
  out.impl()->grad_fn = std::move(node);
  return out;
}

// An existing gradient about to take another contribution: a bf16 image its first writer kept
// (bf16_image_kept_to_fill) would no longer match it.
static Tensor changing(const std::shared_ptr<TensorImpl>& grad) {
  grad->storage->bf16.reset();
  return Tensor(grad);
}

Tensor grad_of(const Tensor& t) {
  TensorImpl* impl = t.impl();
  if (impl->grad) return changing(impl->grad);
  Tensor g = Tensor::zeros(t.shape());
  impl->grad = g.impl_ptr();
  return g;
}

GradSlot grad_slot(const Tensor& t) {
  TensorImpl* impl = t.impl();
  if (impl->grad) return {changing(impl->grad), false};
  Tensor g = Tensor::empty(t.shape());
  impl->grad = g.impl_ptr();
  return {g, true};
}

bool adopt_grad(const Tensor& t, const Tensor& g) {
  TensorImpl* impl = t.impl();
  if (impl->grad || g.shape() != t.shape() || !g.is_contiguous()) return false;
  impl->grad = g.impl_ptr();
  return true;
}

void Tensor::backward() const {
  SL_CHECK(numel() == 1, "backward() needs a scalar, got shape " + shape_str(shape()));
  sl::backward(*this, Tensor::ones(shape()));
}

void backward(const Tensor& root, const Tensor& seed) {
  SL_CHECK(root.requires_grad(), "backward() on a tensor that does not require grad");
  SL_CHECK(seed.shape() == root.shape(), "backward(): seed gradient of shape " + shape_str(seed.shape()) +
                                             " for an output of shape " + shape_str(root.shape()));
  const auto& impl_ = root.impl_ptr();

  // Topological order by iterative DFS (graphs of deep models overflow a recursive one).
  // The order holds owning handles: freeing a consumer's node must not free its inputs.
  std::vector<std::shared_ptr<TensorImpl>> order;
  std::unordered_set<TensorImpl*> seen{impl_.get()};
  std::vector<std::pair<std::shared_ptr<TensorImpl>, size_t>> stack{{impl_, 0}};
  while (!stack.empty()) {
    auto& [t, i] = stack.back();
    if (t->grad_fn && i < t->grad_fn->inputs.size()) {
      const auto& in = t->grad_fn->inputs[i++].impl_ptr();
      if (in && in->requires_grad && seen.insert(in.get()).second) stack.push_back({in, 0});
    } else {
      order.push_back(t);
      stack.pop_back();
    }
  }

  Tensor g = grad_of(root);
  const float* sd = seed.data();
  for (int64_t i = 0, n = g.numel(); i < n; ++i) g.data()[i] += sd[i];
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    const auto& t = *it;
    if (!t->grad_fn) {  // a leaf: its gradient stays for the optimiser, and is final here
      if (g_on_leaf_grad && t->grad) g_on_leaf_grad->fn_(Tensor(t));
      continue;
    }
    if (t->grad) {
      if (profile::enabled()) {
        auto t0 = std::chrono::steady_clock::now();
        t->grad_fn->backward(Tensor(t), Tensor(t->grad));
        profile::add_backward(t->grad_fn->op, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      } else {
        t->grad_fn->backward(Tensor(t), Tensor(t->grad));
      }
    }
    // Intermediate gradients and the graph are not needed twice.
    t->grad.reset();
    t->grad_fn.reset();
  }
}

}  // namespace sl
