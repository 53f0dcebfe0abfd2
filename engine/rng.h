// A small, fast, fully deterministic generator (xoshiro256**) whose whole state can be saved in
// a checkpoint, so that a resumed run draws exactly the numbers an uninterrupted one would.
#pragma once
#include <array>
#include <cstdint>

namespace sl {

class Rng {
 public:
  explicit Rng(uint64_t seed = 0) { reseed(seed); }
  void reseed(uint64_t seed);
  uint64_t next_u64();
  uint64_t uniform_int(uint64_t n);  // in [0, n)
  double uniform();                  // in [0, 1)
  float normal();                    // standard normal (Box-Muller, no cached spare)
  std::array<uint64_t, 4> state() const { return s_; }
  void set_state(const std::array<uint64_t, 4>& s) { s_ = s; }

 private:
  std::array<uint64_t, 4> s_;
};

}  // namespace sl
