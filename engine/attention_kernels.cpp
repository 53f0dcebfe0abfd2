#include "engine/attention_kernels.h"

#include <cmath>
#include <limits>

#include "engine/ops.h"
#include "engine/ops/raw.h"

namespace sl {

namespace {

Tensor masked_zero(const Tensor& w, const KernelInputs& in) { return masked_fill(w, in.mask, in.mask_shape, 0.f); }

// ---- softmax: P_ij = exp(s_ij) / sum_l exp(s_il) --------------------------------------------

Tensor softmax_composed(const Tensor& s, const KernelInputs& in) {
  Tensor z = masked_fill(s, in.mask, in.mask_shape, -std::numeric_limits<float>::infinity());
  if (!in.extra_logit.defined()) return softmax(z);
  // exp(s_ij) / (exp(c) + sum_l exp(s_il)): the extra column takes mass but has no value.
  return slice(softmax(concat({z, in.extra_logit}, -1)), -1, 0, s.size(-1));
}

float softmax_row(float* s, float*, int64_t lo, int64_t hi, float) {
  float top = -std::numeric_limits<float>::infinity(), sum = 0;
#pragma omp simd reduction(max : top)
  for (int64_t j = lo; j < hi; ++j) top = s[j] > top ? s[j] : top;  // std::max keeps GCC 12 scalar
#pragma omp simd reduction(+ : sum)
  for (int64_t j = lo; j < hi; ++j) {
    s[j] = exp_approx(s[j] - top);
    sum += s[j];
  }
  const float inv = sum > 0 ? 1.f / sum : 0.f;
#pragma omp simd
  for (int64_t j = lo; j < hi; ++j) s[j] *= inv;
  return sum;
}

// dL/ds_j = P_j (dL/dP_j - sum_l dL/dP_l P_l)
void softmax_grad_row(float* dr, const float* pr, const float*, int64_t n) {
  float c = 0;
#pragma omp simd reduction(+ : c)
  for (int64_t j = 0; j < n; ++j) c += dr[j] * pr[j];
#pragma omp simd
  for (int64_t j = 0; j < n; ++j) dr[j] = pr[j] * (dr[j] - c);
}

// ---- kernels applied score by score: W_ij = f(s_ij) ------------------------------------------

// A fused row and gradient row from f(s, b) and f' written through W = f(s).
template <float (*f)(float, float)>
float pointwise_row(float* s, float* w, int64_t lo, int64_t hi, float bias) {
  float sum = 0;
#pragma omp simd reduction(+ : sum)
  for (int64_t j = lo; j < hi; ++j) {
    const float x = s[j];
    w[j] = f(x, bias);
    sum += w[j];
  }
  return sum;
}
template <float (*df)(float)>
void pointwise_grad_row(float* dr, const float*, const float* wr, int64_t n) {
#pragma omp simd
  for (int64_t j = 0; j < n; ++j) dr[j] *= df(wr[j]);
}

// sigmoid: W = sigma(s + b); b = -log T by default (attention.sigmoid_bias)
float sigmoid_of(float x, float b) { return 1.f / (1.f + exp_approx(-(x + b))); }
float sigmoid_slope(float w) { return w * (1.f - w); }
Tensor sigmoid_composed(const Tensor& s, const KernelInputs& in) { return masked_zero(sigmoid(add_scalar(s, in.bias)), in); }

// relu: W = max(s, 0)
float relu_of(float x, float) { return std::max(x, 0.f); }
float relu_slope(float w) { return w > 0.f ? 1.f : 0.f; }
Tensor relu_composed(const Tensor& s, const KernelInputs& in) { return masked_zero(relu(s), in); }

// linear and elu_plus_one: W = phi(q) . phi(k) / sqrt(d_h), the scores themselves
Tensor identity_composed(const Tensor& s, const KernelInputs& in) { return masked_zero(s, in); }
Tensor elu_plus_one(const Tensor& x) { return add_scalar(elu(x), 1.f); }  // keeps every weight positive

// mlp: W = w2 . gelu(w1 s + b1) + b2, one learned scalar function of the score shared by all heads
Tensor mlp_composed(const Tensor& s, const KernelInputs& in) {
  const std::vector<Tensor>& p = in.params;
  Tensor h = gelu(linear(s.reshape({-1, 1}), p[0], p[1]));
  return masked_zero(linear(h, p[2], p[3]).reshape(s.shape()), in);
}
const std::vector<KernelParam> kMlpParams = {
    {"mlp_w1", [](int64_t n) { return Shape{n, 1}; }, [](int64_t) { return Init::normal(1.f); }},
    {"mlp_b1", [](int64_t n) { return Shape{n}; }, [](int64_t) { return Init::zeros(); }},
    {"mlp_w2", [](int64_t n) { return Shape{1, n}; }, [](int64_t n) { return Init::normal(1.f / std::sqrt((float)n)); }},
    {"mlp_b2", [](int64_t) { return Shape{1}; }, [](int64_t) { return Init::zeros(); }},
};

// softpick (Zuhri et al. 2025), a softmax replacement that leaves mass unassigned instead of
// parking it on a sink:  P_ij = relu(e^{s_ij} - 1) / (sum_l |e^{s_il} - 1| + eps).
// Numerator and denominator are scaled by e^{-m} with m the row's largest visible score, so the
// exponentials cannot overflow; m is a constant of the row, so the gradient is exact.
Tensor softpick_composed(const Tensor& s, const KernelInputs& in) {
  const int64_t S = s.size(-1), rows = s.numel() / S, T = in.mask_shape[0];
  Tensor sc = s.contiguous(), m = Tensor::empty(Shape(s.shape().begin(), s.shape().end() - 1));
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = sc.data() + r * S;
    const uint8_t* blocked = in.mask.data() + (r % T) * S;
    float top = 0;  // e^{-m} <= 1: a row of negative scores keeps the unscaled form
    for (int64_t j = 0; j < S; ++j)
      if (!blocked[j]) top = std::max(top, row[j]);
    m.data()[r] = top;
  }
  Shape col = s.shape();
  col.back() = 1;
  m = m.reshape(col);
  const Tensor floor = exp(scale(m, -1.f));  // e^{-m}: the scaled 1
  Tensor w = masked_zero(sub(exp(sub(s, m)), floor), in);
  Tensor magnitude = sum(add(relu(w), relu(scale(w, -1.f))), -1, true);
  return div(relu(w), add(magnitude, scale(floor, 1e-6f)));
}

}  // namespace

const std::vector<AttentionKernel>& attention_kernels() {
  static const std::vector<AttentionKernel> kernels = {
      {AttnKernel::Softmax, "softmax", "P_ij = exp(s_ij) / sum_l exp(s_il)", true, true, nullptr, softmax_composed,
       softmax_row, softmax_grad_row, {}},
      {AttnKernel::Sigmoid, "sigmoid", "W_ij = sigmoid(s_ij + b), b = attention.sigmoid_bias (auto: -log T)", false,
       true, nullptr, sigmoid_composed, pointwise_row<sigmoid_of>, pointwise_grad_row<sigmoid_slope>, {}},
      {AttnKernel::EluPlusOne, "elu_plus_one", "W_ij = phi(q_i) . phi(k_j) / sqrt(d_h), phi(x) = ELU(x) + 1", false,
       true, elu_plus_one, identity_composed, nullptr, nullptr, {}},
      {AttnKernel::Linear, "linear", "W_ij = q_i . k_j / sqrt(d_h)", false, false, nullptr, identity_composed, nullptr,
       nullptr, {}},
      {AttnKernel::Mlp, "mlp", "W_ij = w2 . GELU(w1 s_ij + b1) + b2, learned, shared by all heads", false, false,
       nullptr,
       mlp_composed, nullptr, nullptr, kMlpParams},
      {AttnKernel::Relu, "relu", "W_ij = max(s_ij, 0)", false, true, nullptr, relu_composed, pointwise_row<relu_of>,
       pointwise_grad_row<relu_slope>, {}},
      {AttnKernel::Softpick, "softpick", "P_ij = relu(e^s_ij - 1) / (sum_l abs(e^s_il - 1) + 1e-6), rows sum to <= 1",
       false, true, nullptr, softpick_composed, nullptr, nullptr, {}},
  };
  return kernels;
}

const AttentionKernel& attention_kernel(AttnKernel id) {
  for (const AttentionKernel& k : attention_kernels())
    if (k.id == id) return k;
  throw Error("attention: kernel " + std::to_string((int)id) + " is not declared");
}

const AttentionKernel& attention_kernel(const std::string& name) {
  for (const AttentionKernel& k : attention_kernels())
    if (name == k.name) return k;
  std::string valid;
  for (const std::string& n : attention_kernel_names()) valid += (valid.empty() ? "" : ", ") + n;
  throw Error("attention: kernel '" + name + "' is not one of " + valid);
}

std::vector<std::string> attention_kernel_names() {
  std::vector<std::string> names;
  for (const AttentionKernel& k : attention_kernels()) names.push_back(k.name);
  return names;
}

}  // namespace sl
