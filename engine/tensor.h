// Tensor: a shared handle to float32 storage with a shape, strides and an offset.
// Views (reshape, transpose, permute, slices of parameters) share storage; kernels that
// need dense rows call contiguous(). Autograd state lives on the same handle (see autograd.h).
#pragma once
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

namespace sl {

using Shape = std::vector<int64_t>;

std::string shape_str(const Shape& s);
int64_t shape_numel(const Shape& s);
// Contiguous (row-major) strides of a shape.
Shape contiguous_strides(const Shape& s);

// A 64-byte aligned float buffer. A Storage may be a slice of a larger owner (all
// parameters of a model live in one allocation).
struct Storage {
  float* data = nullptr;
  int64_t size = 0;
  std::shared_ptr<void> owner;
  // The bf16 rounding of all of data, made once for values that no longer change (an op's output
  // read by several bf16 products); see bf16_image_kept in ops/raw.h.
  std::shared_ptr<Storage> bf16;
  static std::shared_ptr<Storage> allocate(int64_t n);  // uninitialised, from a recycling pool
  // Bytes of pooled buffers in use now, and the most in use since reset_peak().
  static int64_t live_bytes();
  static int64_t peak_bytes();
  static void reset_peak();
  // Frees the pooled buffers waiting for reuse: a model of other shapes would never reuse them
  // (the bench between its configurations).
  static void release_free();
  static int64_t pooled_bytes();  // bytes of the buffers waiting for reuse
};

class Tensor;
struct Node;

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  int64_t offset = 0;
  Shape shape;
  Shape strides;
  bool requires_grad = false;
  std::shared_ptr<TensorImpl> grad;   // same shape, contiguous
  std::shared_ptr<Node> grad_fn;      // null for leaves
};

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // Factories. All allocate contiguous storage.
  static Tensor empty(const Shape& shape);
  static Tensor zeros(const Shape& shape);
  static Tensor ones(const Shape& shape);
  static Tensor full(const Shape& shape, float value);
  static Tensor from(const Shape& shape, const std::vector<float>& values);
  static Tensor scalar(float value) { return full({}, value); }

  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const { return impl_->shape; }
  const Shape& strides() const { return impl_->strides; }
  int64_t dim() const { return (int64_t)impl_->shape.size(); }
  int64_t size(int64_t d) const;  // negative d counts from the end
  int64_t numel() const { return shape_numel(impl_->shape); }
  bool is_contiguous() const;

  float* data() { return impl_->storage->data + impl_->offset; }
  const float* data() const { return impl_->storage->data + impl_->offset; }
  float item() const;
  std::vector<float> to_vector() const;  // contiguous copy of the values

  // Differentiable views and copies (defined in ops/shape.cpp).
  Tensor reshape(const Shape& shape) const;
  Tensor transpose(int64_t a, int64_t b) const;
  Tensor permute(const Shape& dims) const;
  Tensor contiguous() const;
  // A non-differentiable deep copy; detach() shares storage without history.
  Tensor clone() const;
  Tensor detach() const;

  // Autograd.
  bool requires_grad() const { return impl_->requires_grad; }
  Tensor& set_requires_grad(bool on = true);
  Tensor grad() const { return impl_->grad ? Tensor(impl_->grad) : Tensor(); }
  void zero_grad();
  void backward() const;  // on a scalar; gradients accumulate into leaves

  TensorImpl* impl() const { return impl_.get(); }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }

 private:
  std::shared_ptr<TensorImpl> impl_;
};

// p[0..n) = value, on all threads for large n: with 16 threads a one-thread memset of a gradient
// buffer costs as much as the op that fills it.
void fill(float* p, int64_t n, float value);

// A view of `base` with the given shape/strides/offset (no autograd; see shape.cpp for that).
Tensor make_view(const Tensor& base, const Shape& shape, const Shape& strides, int64_t offset);

}  // namespace sl
