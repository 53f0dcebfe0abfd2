// Measures of a stream of token vectors x [B, T, D] (the residual stream after a block, or an
// attention's output): over-smoothing (Dong et al. 2021; Barbero et al. 2025), massive
// activations (Sun et al. 2024) and the outliers that hurt quantisation (Bondarenko et al. 2023).
// The per-sequence measures return one value per sequence [B].
#pragma once
#include <array>
#include <vector>

#include "engine/tensor.h"

namespace sl::models {

// The mean over ordered pairs i != j of cos(x_i, x_j), from the unit vectors u_i = x_i / ||x_i||:
// sum_{i != j} u_i . u_j = ||sum_i u_i||^2 - sum_i ||u_i||^2, so O(T D), not O(T^2 D). A zero
// vector has cosine 0 with every other. NaN for T < 2.
std::vector<double> mean_pairwise_cosine(const Tensor& x);

// The rank-collapse residual ||X - 1 xbar^T||_F / ||X||_F, xbar the mean token (0 when every
// token is the same vector; NaN for X = 0).
std::vector<double> rank_residual(const Tensor& x);

// The mean over tokens of the kurtosis of a token's D channels, m4 / m2^2 with m_k the k-th
// central moment (3 for Gaussian channels; tokens whose channels are all equal are skipped, NaN
// if every one is).
std::vector<double> token_kurtosis(const Tensor& x);

// ||X||_inf: the largest |x| over the sequence's tokens and channels.
std::vector<double> inf_norm(const Tensor& x);

// Over every entry of x (all sequences, tokens and channels): the three largest |x|, largest
// first (NaN where x has fewer entries), and the median |x| (the upper one of an even count).
struct Magnitudes {
  std::array<float, 3> top;
  float median;
};
Magnitudes magnitudes(const Tensor& x);

}  // namespace sl::models
