// The error every layer throws for bad input (wrong shapes, bad arguments, unreadable files):
// its message names what is wrong and what is valid, and the CLI prints it as it is.
#pragma once
#include <stdexcept>
#include <string>

namespace sl {

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

#define SL_CHECK(cond, msg)                           \
  do {                                                \
    if (!(cond)) throw ::sl::Error(std::string(msg)); \
  } while (0)

}  // namespace sl
