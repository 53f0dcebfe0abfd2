#include "engine/profile.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <vector>

namespace sl::profile {

namespace {
using clock = std::chrono::steady_clock;
struct Entry {
  double fwd = 0, bwd = 0;
  long calls = 0;
};
bool g_on = false;
clock::time_point g_last;
std::map<std::string, Entry> g_table;
}  // namespace

void enable(bool on) { g_on = on; }
bool enabled() { return g_on; }
void mark() { g_last = clock::now(); }

void add_forward(const char* op) {
  auto now = clock::now();
  Entry& e = g_table[op];
  e.fwd += std::chrono::duration<double>(now - g_last).count();
  e.calls++;
  g_last = now;
}

void add_backward(const char* op, double seconds) { g_table[op].bwd += seconds; }

void reset() { g_table.clear(); }

std::string report() {
  std::vector<std::pair<std::string, Entry>> rows(g_table.begin(), g_table.end());
  std::sort(rows.begin(), rows.end(), [](auto& a, auto& b) { return a.second.fwd + a.second.bwd > b.second.fwd + b.second.bwd; });
  double total = 0;
  for (auto& [n, e] : rows) total += e.fwd + e.bwd;
  std::string out;
  char line[160];
  std::snprintf(line, sizeof line, "%-20s %10s %10s %8s %7s\n", "op", "fwd ms", "bwd ms", "calls", "share");
  out += line;
  for (auto& [n, e] : rows) {
    std::snprintf(line, sizeof line, "%-20s %10.1f %10.1f %8ld %6.1f%%\n", n.c_str(), e.fwd * 1e3, e.bwd * 1e3, e.calls,
                  100 * (e.fwd + e.bwd) / std::max(total, 1e-12));
    out += line;
  }
  std::snprintf(line, sizeof line, "%-20s %10.1f ms\n", "total", total * 1e3);
  return out + line;
}

}  // namespace sl::profile
