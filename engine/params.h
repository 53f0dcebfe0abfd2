// Named parameters in one allocation (as llm.c does): models declare parameters by
// hierarchical name ("blocks.3.attn.wq"), then finalize() places all values in one buffer and
// all gradients in another. Optimisers, gradient clipping, checkpoints and the MPI all-reduce
// then work on flat memory, and each parameter is a view into it.
#pragma once
#include <string>
#include <vector>

#include "engine/rng.h"
#include "engine/tensor.h"

namespace sl {

struct Init {
  enum Kind { Normal, Zeros, Ones, Constant, Uniform } kind = Normal;
  float a = 0.02f;  // Normal: std; Constant: value; Uniform: half-width
  static Init normal(float std) { return {Normal, std}; }
  static Init zeros() { return {Zeros, 0}; }
  static Init ones() { return {Ones, 1}; }
  static Init constant(float v) { return {Constant, v}; }
  static Init uniform(float half_width) { return {Uniform, half_width}; }
};

struct Param {
  std::string name;
  Tensor value;       // a view into the flat value buffer, requires_grad
  Init init;
  bool weight_decay;  // decoupled weight decay applies to this parameter
  bool trainable = true;
  int64_t offset = 0;  // in floats, within the flat buffers
};

class ParamStore {
 public:
  // Declares a parameter; its storage exists after finalize(). Names must be unique.
  Tensor add(const std::string& name, const Shape& shape, Init init, bool weight_decay);
  // Allocates the flat buffers (each parameter 64-byte aligned) and initialises in
  // declaration order from `rng`.
  void finalize(Rng& rng);
  bool finalized() const { return finalized_; }

  std::vector<Param>& params() { return params_; }
  const std::vector<Param>& params() const { return params_; }
  const Param* find(const std::string& name) const;
  int64_t count() const;  // number of scalars in all parameters (not padding)

  float* values() { return values_.data(); }
  float* grads() { return grads_.data(); }
  int64_t flat_size() const { return flat_size_; }  // including alignment padding
  void zero_grad();

 private:
  std::vector<Param> params_;
  Tensor values_, grads_;
  int64_t flat_size_ = 0;
  bool finalized_ = false;
};

}  // namespace sl
