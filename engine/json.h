// JSON text for files read by other tools (safetensors headers, transformers configs): quoted
// strings and numbers. Objects and arrays are assembled by the callers, who know their layout.
#pragma once
#include <string>
#include <string_view>

namespace sl {

// "utf8" with '"', '\' and control characters escaped; other UTF-8 passes through unchanged.
std::string json_string(std::string_view utf8);
// The shortest text that reads back as exactly v, with a fraction or exponent so that readers
// take it for a float ("1e-05", "10000.0"); throws on NaN and infinity, which JSON cannot express.
std::string json_number(double v);

}  // namespace sl
