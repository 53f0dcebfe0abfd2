// The sl::Error message `f` throws ("no error" if it does not; other exceptions escape and fail
// the test), for checking that bad input is refused with a message that names it.
#pragma once
#include <functional>
#include <string>

#include "engine/error.h"  // sl::Error

namespace sl::testing {

inline std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

}  // namespace sl::testing
