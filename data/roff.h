// Plain text from man-page sources (roff with the man or mdoc macros): requests dropped, the text
// of heading/font macros kept, escapes resolved to the characters they print. Rendering with
// groff would be exact but costs a process per page; this is good enough for a training corpus.
#pragma once
#include <string>

namespace sl::data {

std::string strip_roff(const std::string& roff);

}  // namespace sl::data
