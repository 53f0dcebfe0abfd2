// The differentiable ops of the engine. Each is defined in engine/ops/<group>.cpp with its
// forward and backward side by side. Shapes follow PyTorch conventions; float32 throughout.
#pragma once
#include <cstdint>
#include <utility>
#include <vector>

#include "engine/attention_kernels.h"
#include "engine/autograd.h"
#include "engine/tensor.h"

namespace sl {

// ---- linear algebra (ops/matmul.cpp, oneDNN matmul) --------------------------------------
// a[..., M, K] @ b[..., K, N] -> [..., M, N]. b's leading (batch) dims either equal a's or are
// absent (b is 2-D and shared by every batch). Operands may be strided views (transposes).
Tensor matmul(const Tensor& a, const Tensor& b);
// x[..., in] @ w[out, in]^T (+ bias[out]): PyTorch's nn.Linear layout.
Tensor linear(const Tensor& x, const Tensor& w, const Tensor& bias = Tensor());

// ---- elementwise arithmetic with NumPy broadcasting (ops/arith.cpp) ------------------------
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor scale(const Tensor& a, float s);       // a * s
Tensor add_scalar(const Tensor& a, float s);  // a + s
inline Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
inline Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
inline Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
inline Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
inline Tensor operator*(const Tensor& a, float s) { return scale(a, s); }

// ---- reductions (ops/reduce.cpp) -----------------------------------------------------------
Tensor sum(const Tensor& x);                                 // all elements -> scalar
Tensor mean(const Tensor& x);
Tensor sum(const Tensor& x, int64_t dim, bool keepdim = false);
Tensor mean(const Tensor& x, int64_t dim, bool keepdim = false);
bool all_finite(const Tensor& x);                            // no NaN or infinity (not recorded)

// ---- pointwise functions (ops/pointwise.cpp, oneDNN eltwise where it has them) -------------
Tensor relu(const Tensor& x);
Tensor gelu(const Tensor& x);       // exact (erf) GELU
Tensor gelu_tanh(const Tensor& x);  // GPT-2's tanh approximation
Tensor silu(const Tensor& x);
Tensor sigmoid(const Tensor& x);
Tensor elu(const Tensor& x, float alpha = 1.f);
Tensor tanh(const Tensor& x);
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor square(const Tensor& x);
Tensor sqrt(const Tensor& x);
// silu(a) * b, SwiGLU's gate, fused, for h = [a | b] along the last dimension (its first half
// the gate a, its second the value b; ops/swiglu.cpp): [..., 2F] -> [..., F]
Tensor swiglu(const Tensor& h);

// ---- normalisation (ops/norm.cpp), over the last dimension ---------------------------------
Tensor rms_norm(const Tensor& x, const Tensor& weight, float eps = 1e-5f);  // weight may be undefined
Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, float eps = 1e-5f);
// A residual add and the norm that reads its sum in one pass over the rows: sum = h + y (same
// shapes) and normed = rms_norm(sum) / layer_norm(sum), recorded as those two ops.
struct ResidualNorm {
  Tensor sum, normed;
};
ResidualNorm add_rms_norm(const Tensor& h, const Tensor& y, const Tensor& weight, float eps = 1e-5f);
ResidualNorm add_layer_norm(const Tensor& h, const Tensor& y, const Tensor& weight, const Tensor& bias,
                            float eps = 1e-5f);

// ---- softmax family (ops/softmax.cpp, oneDNN softmax), over the last dimension -------------
Tensor softmax(const Tensor& x);
Tensor log_softmax(const Tensor& x);

// ---- losses (ops/cross_entropy.cpp) --------------------------------------------------------
// Mean over targets != ignore_index of -log softmax(logits)[target]; logits [N, V].
// z_loss adds z_loss * mean(logsumexp(logits)^2) over the same rows (PaLM's auxiliary loss).
Tensor cross_entropy(const Tensor& logits, const std::vector<int32_t>& targets,
                     int32_t ignore_index = -1, float z_loss = 0.f);
// cross_entropy(linear(x, w), ...) in one op for x [N, D] and an output layer w [V, D], whose
// [N, V] logits are never held whole: the forward takes both gradients chunk by chunk.
Tensor linear_cross_entropy(const Tensor& x, const Tensor& w, const std::vector<int32_t>& targets,
                            int32_t ignore_index = -1, float z_loss = 0.f);

// ---- indexing (ops/embedding.cpp, ops/rows.cpp) --------------------------------------------
// weight[V, D] gathered at ids -> [ids.size(), D]; backward scatter-adds into weight.
Tensor embedding(const Tensor& weight, const std::vector<int32_t>& ids);
// x[N, D] -> x[idx] of shape [idx.size(), D] (rows may repeat).
Tensor gather_rows(const Tensor& x, const std::vector<int32_t>& idx);
// out[n_rows, D] = sum over i with idx[i] == n of x[i]; the adjoint of gather_rows.
Tensor scatter_add_rows(const Tensor& x, const std::vector<int32_t>& idx, int64_t n_rows);

// Top-k along the last dimension of x[N, E]: values [N, k] (differentiable) and their indices,
// row-major [N * k], in descending order of value (ties: lower index first).
struct TopK {
  Tensor values;
  std::vector<int32_t> indices;
};
TopK topk(const Tensor& x, int64_t k);

// ---- shape (ops/shape.cpp); reshape/transpose/permute/contiguous are Tensor methods --------
Tensor concat(const std::vector<Tensor>& xs, int64_t dim);
std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t dim);
Tensor slice(const Tensor& x, int64_t dim, int64_t start, int64_t end);  // [start, end)

// ---- masking (ops/masked_fill.cpp) ---------------------------------------------------------
// mask has the shape of x's trailing mask_shape.size() dims and broadcasts over the rest;
// where mask != 0 the output is `value` and the gradient is zero.
Tensor masked_fill(const Tensor& x, const std::vector<uint8_t>& mask, const Shape& mask_shape,
                   float value);

// ---- rotary position embedding (ops/rope.cpp) ----------------------------------------------
// x[B, T, H, Dh] rotated pairwise (x[2i], x[2i+1]) by angle (pos0 + t) * theta^(-2i/Dh).
Tensor rope(const Tensor& x, float theta = 10000.f, int64_t pos0 = 0);

// ---- fused attention core (ops/attention.cpp) ---------------------------------------------
// For q, k, v [B, T, H, Dh] and a [T, T] mask (1 = blocked), per batch and head:
//   S = scale * q k^T;   P = the kernel's weights of S (attention_kernels.h, one with a fused
//   row), zero where masked;   P /= row sums when normalize;   O = P v  -> [B, T, H, Dh].
// `probs`, if given, receives P (detached) for the statistics: [B, H, T, T], or only the first
// probs_rows sequences and their first probs_len queries and keys (-1 = all), all that a
// capture keeps: a view of P where one block of queries (or the tiled path) covers the sequence,
// else assembled from the blocks for those rows alone.
Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, const std::vector<uint8_t>& mask,
                 AttnKernel kernel, float scale, float kernel_bias, bool normalize, Tensor* probs = nullptr,
                 int64_t probs_rows = -1, int64_t probs_len = -1);

}  // namespace sl
