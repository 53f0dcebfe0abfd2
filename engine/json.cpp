#include "engine/json.h"

#include <charconv>
#include <cmath>
#include <cstdio>

#include "engine/autograd.h"

namespace sl {

std::string json_string(std::string_view utf8) {
  std::string out = "\"";
  for (unsigned char c : utf8) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += (char)c;
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += (char)c;
    }
  }
  return out + "\"";
}

std::string json_number(double v) {
  SL_CHECK(std::isfinite(v), "json: " + std::to_string(v) + " has no JSON form (only finite numbers do)");
  char buf[32];
  std::string s(buf, std::to_chars(buf, buf + sizeof buf, v).ptr);
  return s.find_first_of(".e") == std::string::npos ? s + ".0" : s;  // a float stays a float in JSON
}

}  // namespace sl
