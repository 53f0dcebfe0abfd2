// Parameters of a test model with random values: zero- and one-initialised ones (biases, norm
// gains, kv-bias slots) too, so that every part of a variant takes part.
#pragma once
#include "engine/params.h"

namespace sl::testing {

inline void randomise(ParamStore& ps, uint64_t seed, float noise = 0.3f) {
  Rng rng(seed);
  ps.finalize(rng);
  for (auto& p : ps.params())
    for (int64_t i = 0; i < p.value.numel(); ++i) p.value.data()[i] += noise * rng.normal();
}

}  // namespace sl::testing
