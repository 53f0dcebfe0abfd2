// Per-op wall time, for finding where a training step goes. When enabled, the forward time of
// an op is the time since the previous op was recorded (its kernel plus any glue before it),
// and the backward time is measured around its backward closure.
#pragma once
#include <string>

namespace sl::profile {

void enable(bool on);
bool enabled();
void mark();  // starts the forward clock (call before a forward pass)
void add_forward(const char* op);
void add_backward(const char* op, double seconds);
void reset();
// A table of ops by total time: forward ms, backward ms, calls, share of the total.
std::string report();

}  // namespace sl::profile
