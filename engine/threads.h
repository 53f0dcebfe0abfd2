// Thread count for OpenMP loops and oneDNN (which runs on the same OpenMP runtime).
#pragma once

namespace sl {
// n <= 0 keeps OMP_NUM_THREADS (or the OpenMP default).
void set_num_threads(int n);
int num_threads();
}  // namespace sl
