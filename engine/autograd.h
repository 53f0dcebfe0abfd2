// Reverse-mode autograd. Every op builds its output with record(): the backward closure
// receives the output and its gradient and accumulates into the inputs' gradients through
// grad_of(). Closures must not capture the output itself (that would be a reference cycle).
#pragma once
#include <functional>
#include <initializer_list>
#include <string>
#include <vector>

#include "engine/error.h"
#include "engine/tensor.h"

namespace sl {

using BackwardFn = std::function<void(const Tensor& out, const Tensor& grad_out)>;

struct Node {
  const char* op = "";
  std::vector<Tensor> inputs;  // edges of the graph, for the topological order
  BackwardFn backward;
};

// Gradient recording is on unless a NoGrad guard is alive on this thread.
bool grad_enabled();
struct NoGrad {
  NoGrad();
  ~NoGrad();
  NoGrad(const NoGrad&) = delete;
  NoGrad& operator=(const NoGrad&) = delete;
 private:
  bool prev_;
};

// True when `t` takes part in the graph being recorded (so its gradient is wanted).
inline bool needs_grad(const Tensor& t) { return t.defined() && t.requires_grad(); }

// Attaches `fn` to `out` if grad mode is on and any input needs a gradient. Returns out.
Tensor record(Tensor out, const char* op, std::vector<Tensor> inputs, BackwardFn fn);
// Whether record() will attach a backward to an op of these inputs.
bool recording(std::initializer_list<Tensor> inputs);

// The gradient buffer of t (contiguous, same shape), created as zeros on first use.
// Backward closures add into it.
Tensor grad_of(const Tensor& t);

// t's gradient buffer for a closure that writes a whole gradient in one pass. `first` when this
// is t's first contribution: the buffer is new and uninitialised, and the closure must assign
// every element (saving a pass that zeroes it and a read of those zeros); later ones add.
struct GradSlot {
  Tensor grad;
  bool first;
};
GradSlot grad_slot(const Tensor& t);

// Makes g itself t's gradient when t has none yet and g is t's whole gradient so far: a
// pass-through contribution (an add's) then costs no copy. False, and nothing done, when t
// already has a gradient or g is not of t's shape. g must be a finished gradient that only t's
// gradient writes from now on (an op's output gradient, in its own backward: once that backward
// has run, no other op reads or writes it); only one input may adopt it.
bool adopt_grad(const Tensor& t, const Tensor& g);

// Backpropagates `seed` (d loss / d root, same shape as root) through the graph of root.
// Tensor::backward() is backward(loss, 1).
void backward(const Tensor& root, const Tensor& seed);

// While alive on this thread, backward() calls `fn` with each leaf that received a gradient, as
// soon as that gradient is final (every consumer of the leaf has run), once per leaf and backward.
// Data-parallel training uses it to start summing gradients across processes while the rest of
// the backward still runs.
struct OnLeafGrad {
  explicit OnLeafGrad(std::function<void(const Tensor& leaf)> fn);
  ~OnLeafGrad();
  OnLeafGrad(const OnLeafGrad&) = delete;
  OnLeafGrad& operator=(const OnLeafGrad&) = delete;
 private:
  std::function<void(const Tensor&)> fn_;
  OnLeafGrad* prev_;
  friend void backward(const Tensor&, const Tensor&);
};

}  // namespace sl
