// Training FLOPs per token of a decoder, as the studies and the PyTorch reference
// (../shared/bench/torch_ref.py) count them: each parameter that takes part in a matrix product
// costs one multiply-add forward and two backward (6 FLOPs), and the attention scores and
// weighted values 12 L d T (forward and backward of q k^T and P v). The input embedding table is
// a lookup and is not counted; a tied table counts once, as the output layer.
#pragma once
#include <cstdint>

#include "models/decoder.h"

namespace sl::models {

// The weights a token multiplies: q, k, v, o (and a gate), the FFN's (an MoE block's router and
// the experts a token goes to), and the output layer.
int64_t matmul_params_per_token(const DecoderConfig& c);

// 6 * matmul_params_per_token + 12 * n_layers * d_model * T, for sequences of T tokens.
double train_flops_per_token(const DecoderConfig& c, int64_t T);

}  // namespace sl::models
