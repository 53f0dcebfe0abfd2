// Gradient check against central finite differences. The scalar probed is
// L(x) = sum_i w_i * f(x)_i with fixed random weights w, accumulated in double, so that the
// finite difference sees a smooth function of every input element.
#pragma once
#include <cmath>
#include <functional>
#include <random>
#include <vector>

#include "engine/ops.h"

namespace sl::testing {

inline Tensor randn(const Shape& shape, uint64_t seed, float std = 1.f) {
  std::mt19937_64 g(seed);
  std::normal_distribution<float> d(0.f, std);
  std::vector<float> v(shape_numel(shape));
  for (auto& x : v) x = d(g);
  return Tensor::from(shape, v);
}

inline Tensor rand_uniform(const Shape& shape, uint64_t seed, float lo, float hi) {
  std::mt19937_64 g(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(shape_numel(shape));
  for (auto& x : v) x = d(g);
  return Tensor::from(shape, v);
}

// Relative error ||a - b|| / max(||a||, ||b||, tiny) over whole gradient vectors.
inline double rel_error(const std::vector<double>& a, const std::vector<double>& b) {
  double num = 0, na = 0, nb = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    num += (a[i] - b[i]) * (a[i] - b[i]);
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  return std::sqrt(num) / std::max({std::sqrt(na), std::sqrt(nb), 1e-12});
}

// Returns the worst relative error over `inputs` between autograd and finite differences.
inline double gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                        std::vector<Tensor> inputs, double eps = 1e-2, uint64_t seed = 7) {
  for (auto& t : inputs) t.set_requires_grad(true);
  Tensor out = f(inputs);
  Tensor w = randn(out.shape(), seed);
  auto probe = [&](const Tensor& o) {
    std::vector<float> ov = o.to_vector(), wv = w.to_vector();
    double s = 0;
    for (size_t i = 0; i < ov.size(); ++i) s += (double)ov[i] * wv[i];
    return s;
  };
  backward(out, w);  // d(sum w*out)/d out = w

  double worst = 0;
  for (auto& t : inputs) {
    std::vector<double> analytic, numeric;
    std::vector<float> g = t.grad().to_vector();
    float* p = t.data();
    NoGrad ng;
    for (int64_t i = 0; i < t.numel(); ++i) {
      float x0 = p[i];
      p[i] = x0 + (float)eps;
      double up = probe(f(inputs));
      p[i] = x0 - (float)eps;
      double dn = probe(f(inputs));
      p[i] = x0;
      numeric.push_back((up - dn) / (2 * eps));
      analytic.push_back(g[i]);
    }
    worst = std::max(worst, rel_error(analytic, numeric));
  }
  return worst;
}

}  // namespace sl::testing
