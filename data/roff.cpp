#include "data/roff.h"

#include <cctype>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace sl::data {

namespace {

// Printed form of the named glyphs that appear in prose; the rest are dropped.
const std::string& glyph(std::string_view name) {
  static const std::unordered_map<std::string_view, std::string> table = {
      {"em", "--"}, {"en", "-"},  {"hy", "-"},  {"mi", "-"},  {"bu", "*"},   {"co", "(c)"}, {"rg", "(R)"},
      {"tm", "(TM)"}, {"aq", "'"}, {"dq", "\""}, {"lq", "\""}, {"rq", "\""}, {"oq", "'"},  {"cq", "'"},
      {"ti", "~"},  {"ha", "^"},  {"rs", "\\"}, {"ga", "`"},  {"at", "@"},   {"sh", "#"},   {"Do", "$"},
      {"pl", "+"},  {"eq", "="},  {"<=", "<="}, {">=", ">="}, {"->", "->"},  {"<-", "<-"},  {"R", "(R)"},
      {"Tm", "(TM)"}, {"fo", "<"}, {"fc", ">"}, {"ba", "|"},  {"or", "|"},   {"sl", "/"},   {"lB", "["},
      {"rB", "]"},  {"lC", "{"},  {"rC", "}"},  {"la", "<"},  {"ra", ">"},   {"de", " degrees"}};
  static const std::string none;
  auto it = table.find(name);
  return it == table.end() ? none : it->second;
}

// Reads an escape's name at s[i]: "(xx", "[name]" or a single character; advances i past it.
std::string_view escape_name(std::string_view s, size_t& i) {
  if (i >= s.size()) return {};
  if (s[i] == '(') {
    std::string_view n = s.substr(i + 1, 2);
    i += 3;
    return n;
  }
  if (s[i] == '[') {
    size_t end = s.find(']', i);
    if (end == std::string_view::npos) end = s.size();
    std::string_view n = s.substr(i + 1, end - i - 1);
    i = end + 1;
    return n;
  }
  return s.substr(i++, 1);
}

std::string unescape(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size();) {
    char c = s[i++];
    if (c != '\\') {
      out.push_back(c);
      continue;
    }
    if (i >= s.size()) break;
    char e = s[i++];
    switch (e) {
      case '"': return out;  // comment to end of line
      case '-': case 'e': case '\\': out.push_back(e == '-' ? '-' : '\\'); break;
      case ' ': case '~': case '0': out.push_back(' '); break;
      case '\'': out.push_back('\''); break;
      case '`': out.push_back('`'); break;
      case '.': out.push_back('.'); break;
      case '&': case '|': case '^': case ':': case '/': case ',': case '%': case 'c': case ')': break;
      case 'f': case 'F': case 'n': case 'g': case 'k': case 'm': escape_name(s, i); break;  // fonts, registers
      case '(': case '[': --i; out += glyph(escape_name(s, i)); break;
      case 'C': {  // \C'name'
        size_t end = s.find('\'', i + 1);
        if (end == std::string_view::npos) end = s.size() - 1;
        out += glyph(s.substr(i + 1, end - i - 1));
        i = end + 1;
        break;
      }
      case '*': out += glyph(escape_name(s, i)); break;  // strings: only the common ones
      case 's':  // size changes: \s+1, \s-2, \s0, \s[...], \s(12
        if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
        if (i < s.size() && (s[i] == '(' || s[i] == '[')) escape_name(s, i);
        else if (i < s.size() && isdigit((unsigned char)s[i])) ++i;
        break;
      case 'h': case 'v': case 'w': case 'o': case 'X': case 'l': case 'L': case 'D': case 'b': case 'x':
      case 'Z': case 'A': case 'R': case 'N': case 'V': case 'Y': case 'B': {  // quoted argument, dropped
        if (i < s.size()) {
          char q = s[i];
          size_t end = s.find(q, i + 1);
          i = end == std::string_view::npos ? s.size() : end + 1;
        }
        break;
      }
      default: out.push_back(e);
    }
  }
  return out;
}

// Macro arguments, honouring double quotes.
std::vector<std::string> split_args(std::string_view s) {
  std::vector<std::string> args;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
    if (i >= s.size()) break;
    std::string a;
    if (s[i] == '"') {
      for (++i; i < s.size() && s[i] != '"'; ++i) a.push_back(s[i]);
      ++i;
    } else {
      for (; i < s.size() && s[i] != ' ' && s[i] != '\t'; ++i) a.push_back(s[i]);
    }
    args.push_back(a);
  }
  return args;
}

bool is_mdoc_call(const std::string& a) {
  return a.size() == 2 && isupper((unsigned char)a[0]) && islower((unsigned char)a[1]);
}

}  // namespace

std::string strip_roff(const std::string& roff) {
  static const std::unordered_map<std::string_view, int> kind = {
      // 0: prints nothing, 1: heading, 2: paragraph break, 3: text joined by spaces, 4: alternating
      // fonts (joined tight), 5: line break, 6: list item with a tag. Unlisted: requests print
      // nothing, other two-letter capitalised macros (mdoc) print their text.
      {"TH", 0}, {"IX", 0}, {"Dd", 0}, {"Dt", 0}, {"Os", 0}, {"EX", 0}, {"EE", 0}, {"PD", 0},
      {"DT", 0}, {"UE", 0}, {"ME", 0}, {"HP", 2},
      {"SH", 1}, {"SS", 1}, {"Sh", 1}, {"Ss", 1}, {"PP", 2}, {"LP", 2}, {"P", 2},  {"Pp", 2},
      {"sp", 2}, {"Bl", 2}, {"El", 2}, {"Bd", 2}, {"Ed", 2}, {"RS", 2}, {"RE", 2}, {"B", 3},
      {"I", 3},  {"SM", 3}, {"SB", 3}, {"Nm", 3}, {"Nd", 3}, {"BR", 4}, {"BI", 4}, {"IB", 4},
      {"IR", 4}, {"RB", 4}, {"RI", 4}, {"br", 5}, {"TP", 5}, {"IP", 6}, {"It", 6}, {"TQ", 5}};
  std::string out;
  bool in_macro_def = false;
  size_t start = 0;
  while (start < roff.size()) {
    size_t end = roff.find('\n', start);
    if (end == std::string::npos) end = roff.size();
    std::string_view line(roff.data() + start, end - start);
    start = end + 1;
    if (in_macro_def) {
      if (line.substr(0, 2) == "..") in_macro_def = false;
      continue;
    }
    if (line.empty() || (line[0] != '.' && line[0] != '\'')) {
      out += unescape(line);
      out.push_back('\n');
      continue;
    }
    size_t i = 1;
    while (i < line.size() && line[i] == ' ') ++i;
    size_t j = i;
    while (j < line.size() && line[j] != ' ' && line[j] != '\t') ++j;
    std::string_view name = line.substr(i, j - i);
    if (name == "de" || name == "de1" || name == "am") {
      in_macro_def = true;
      continue;
    }
    auto it = kind.find(name);
    int k = it == kind.end() ? (name.size() == 2 && isupper((unsigned char)name[0]) ? 3 : 0) : it->second;
    if (k == 0) continue;  // requests (.TH, .if, .nr, .ds, ...) print nothing
    std::vector<std::string> args = split_args(line.substr(j));
    std::string text;
    if (name == "IP" && args.size() > 1) args.resize(1);  // drop the indent argument
    for (const auto& a : args) {
      if (k == 3 && name != "B" && name != "I" && is_mdoc_call(a)) continue;  // mdoc: nested macro names
      if (!text.empty() && k != 4) text.push_back(' ');
      text += unescape(a);
    }
    if (k == 1) out += "\n" + text + "\n\n";
    else if (k == 2) out += "\n";
    else if (k == 5) out += "\n" + text;
    else if (k == 6) out += "\n" + text + "\n";
    else out += text + "\n";
  }
  return out;
}

}  // namespace sl::data
