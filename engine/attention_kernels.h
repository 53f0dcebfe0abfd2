// Every attention kernel, declared once. A kernel turns the scores s_ij = q_i . k_j / sqrt(d_h)
// of one row into weights W_ij; the attention module then divides W by its row sum when
// attention.normalize asks for it (softmax always is a distribution). Each entry gives:
//   name      the config value (attention.kernel) and the word in logs and docs;
//   formula   what it computes, for --help and the README;
//   composed  W from scores in recorded ops (every variant, any mask, extra key slots);
//   fused     optionally, one pass over a score row and its gradient row, for the engine's
//             fused attention core (ops/attention.cpp).
// Adding a kernel is one entry in attention_kernels.cpp (and its tests).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "engine/params.h"
#include "engine/tensor.h"

namespace sl {

enum class AttnKernel { Softmax, Sigmoid, EluPlusOne, Linear, Mlp, Relu, Softpick };

// What a composed weight function reads besides the scores s [..., T, S].
struct KernelInputs {
  const std::vector<uint8_t>& mask;  // [T, S], 1 = blocked
  Shape mask_shape;                  // {T, S}
  float bias = 0;                    // sigmoid's b in sigma(s + b)
  Tensor extra_logit;                // softmax: one more denominator term without a value (undefined: none)
  std::vector<Tensor> params;        // the kernel's own learned parameters (mlp), in declaration order
};

// One score row s[lo, hi) (the keys the mask leaves visible): writes W into w (which may be s)
// and returns sum_j W_j. A kernel that is a distribution (softmax) writes P into s itself. A
// score of -inf in [lo, hi) is a masked key that the caller rounded into a whole vector: its W
// must be exactly 0, and the others as without it.
using FusedRow = float (*)(float* s, float* w, int64_t lo, int64_t hi, float bias);
// One gradient row of n keys: dr holds dL/dW on entry and dL/ds on return, given the row's
// P (pr) and W (wr). Keys outside the visible run have W = 0 and get dL/ds = 0.
using FusedGradRow = void (*)(float* dr, const float* pr, const float* wr, int64_t n);

// A learned parameter of the kernel (no weight decay): its name under the attention module, and
// its shape and initialisation given the kernel's hidden width (attention.mlp_hidden).
struct KernelParam {
  const char* name;
  Shape (*shape)(int64_t hidden);
  Init (*init)(int64_t hidden);
};

struct AttentionKernel {
  AttnKernel id;
  const char* name;
  const char* formula;
  bool distribution;                 // rows sum to 1 by construction: attention.normalize is moot
  bool nonnegative;                  // W >= 0, so that W / sum_j W is a distribution
  Tensor (*feature_map)(const Tensor& x);  // phi applied to q and k before the scores; null: none
  Tensor (*composed)(const Tensor& s, const KernelInputs& in);  // masked W (0, or P = 0, where blocked)
  FusedRow fused_row;                // null: only the composed path
  FusedGradRow fused_grad_row;
  std::vector<KernelParam> params;
};

const std::vector<AttentionKernel>& attention_kernels();
const AttentionKernel& attention_kernel(AttnKernel id);
// The kernel called `name`; an error lists the valid names.
const AttentionKernel& attention_kernel(const std::string& name);
std::vector<std::string> attention_kernel_names();

}  // namespace sl
