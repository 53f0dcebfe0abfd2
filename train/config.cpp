#include "train/config.h"

#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <optional>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "engine/autograd.h"

namespace sl {

namespace fs = std::filesystem;
using Values = std::map<std::string, Value>;

namespace {

// ---- Messages ----------------------------------------------------------------------------

// `text` quoted for an error message: control bytes escaped, long garbage cut short.
std::string show(const std::string& text) {
  constexpr size_t kMax = 40;
  std::string out = "'";
  for (size_t k = 0; k < text.size() && k < kMax; ++k) {
    const unsigned char ch = text[k];
    if (ch >= 0x20 && ch < 0x7f) {
      out += char(ch);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", ch);
      out += buf;
    }
  }
  return out + (text.size() > kMax ? "...'" : "'");
}

// Shortest text that reads back as the same double.
std::string format_number(double v) {
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, end);
}

std::string type_name(Type t) {
  switch (t) {
    case Type::Int: return "an integer";
    case Type::Float: return "a number";
    case Type::Bool: return "true or false";
    case Type::String: return "text";
    case Type::FloatList: return "a list of numbers";
    case Type::IntList: return "a list of integers";
  }
  return "?";
}

std::string describe(const YAML::Node& node) {
  if (node.IsMap()) return "a map";
  if (node.IsSequence()) return "a list";
  if (node.IsScalar()) return show(node.Scalar());
  return "nothing";
}

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] != b[j - 1])});
      diagonal = up;
    }
  }
  return row[b.size()];
}

// The closest of several (compared text, suggested name) candidates, offered only when close.
struct Nearest {
  void consider(const std::string& word_part, const std::string& text, const std::string& name) {
    if (word_part.size() > 64) return;  // garbage: not worth a suggestion
    const size_t d = edit_distance(word_part, text);
    if (d < distance && d <= std::max<size_t>(2, word_part.size() / 3)) distance = d, best = name;
  }
  std::string hint() const { return best.empty() ? "" : "; did you mean '" + best + "'?"; }
  std::string best;
  size_t distance = SIZE_MAX;
};

// Compares the full dotted key with every key and section, and its last component with every
// key's last component (so 'train.d_model' suggests 'model.d_model').
std::string unknown_key(const std::string& key) {
  Nearest near;
  const std::string last = key.substr(key.rfind('.') + 1);
  for (const std::string& section : sections()) near.consider(key, section, section);
  for (const KeySpec& k : schema()) near.consider(key, k.key, k.key);
  for (const KeySpec& k : schema()) near.consider(last, k.key.substr(k.key.find('.') + 1), k.key);
  return "unknown config key " + show(key) + near.hint();
}

// ---- Values ------------------------------------------------------------------------------

void check_range(const KeySpec& spec, double v, const std::string& text) {
  if ((spec.min && v < *spec.min) || (spec.max && v > *spec.max))
    throw Error(spec.key + ": " + show(text) + " is out of range [" + format_number(spec.min.value_or(-INFINITY)) +
                ", " + format_number(spec.max.value_or(INFINITY)) + "]");
}

// A finite decimal number, or +-inf/0 for one too large/small for a double (ranges reject it);
// nothing for text that is not a number (including "inf" and "nan").
std::optional<double> read_number(const std::string& text) {
  const char* first = text.data() + (!text.empty() && text[0] == '+');
  const char* last = text.data() + text.size();
  double v = 0;
  auto [end, ec] = std::from_chars(first, last, v);
  if (end != last || first == last) return std::nullopt;
  if (ec == std::errc::result_out_of_range) return std::strtod(std::string(first, last).c_str(), nullptr);
  if (ec != std::errc() || !std::isfinite(v)) return std::nullopt;
  return v;
}

int64_t parse_int(const KeySpec& spec, const std::string& text) {
  const char* first = text.data() + (!text.empty() && text[0] == '+');
  int64_t v = 0;
  auto [end, ec] = std::from_chars(first, text.data() + text.size(), v);
  if (ec == std::errc() && end == text.data() + text.size()) {
    check_range(spec, double(v), text);
    return v;
  }
  // Integral values written as floats (1e6, 4.0) are fine, 1.5 is not; digits beyond int64
  // arrive here as a large double and fail the range check (every bound is within 2^53).
  const std::optional<double> d = read_number(text);
  if (!d || *d != std::floor(*d)) throw Error(spec.key + ": expected an integer, got " + show(text));
  check_range(spec, *d, text);
  return int64_t(*d);
}

double parse_float(const KeySpec& spec, const std::string& text) {
  if (spec.allow_auto && text == "auto") return NAN;
  const std::optional<double> d = read_number(text);
  if (!d) throw Error(spec.key + ": expected a number" + (spec.allow_auto ? " or auto" : "") + ", got " + show(text));
  check_range(spec, *d, text);
  return *d;
}

bool parse_bool(const KeySpec& spec, const std::string& text) {
  std::string t = text;
  std::transform(t.begin(), t.end(), t.begin(), [](unsigned char ch) { return std::tolower(ch); });
  if (t == "true" || t == "yes" || t == "on") return true;
  if (t == "false" || t == "no" || t == "off") return false;
  throw Error(spec.key + ": expected true or false, got " + show(text));
}

std::string parse_string(const KeySpec& spec, const std::string& text) {
  if (spec.choices.empty() || std::find(spec.choices.begin(), spec.choices.end(), text) != spec.choices.end())
    return text;
  Nearest near;
  std::string valid;
  for (const std::string& c : spec.choices) {
    near.consider(text, c, c);
    valid += (valid.empty() ? "" : "|") + c;
  }
  throw Error(spec.key + ": expected one of " + valid + ", got " + show(text) + near.hint());
}

template <class T>
std::vector<T> parse_list(const KeySpec& spec, const YAML::Node& node, T (*parse)(const KeySpec&, const std::string&)) {
  std::vector<T> out;
  if (node.IsNull()) return out;
  if (node.IsScalar()) return {parse(spec, node.Scalar())};  // `eps: 0.3` means [0.3]
  if (!node.IsSequence()) throw Error(spec.key + ": expected " + type_name(spec.type()) + ", got " + describe(node));
  for (const YAML::Node& item : node) {
    if (!item.IsScalar())
      throw Error(spec.key + ": expected " + type_name(spec.type()) + ", got an element that is " + describe(item));
    out.push_back(parse(spec, item.Scalar()));
  }
  return out;
}

Value parse_value(const KeySpec& spec, const YAML::Node& node) {
  switch (spec.type()) {
    case Type::FloatList: return parse_list<double>(spec, node, parse_float);
    case Type::IntList: return parse_list<int64_t>(spec, node, parse_int);
    default: break;
  }
  if (spec.type() == Type::String && node.IsNull()) return parse_string(spec, "");
  if (!node.IsScalar()) throw Error(spec.key + ": expected " + type_name(spec.type()) + ", got " + describe(node));
  const std::string& text = node.Scalar();
  switch (spec.type()) {
    case Type::Int: return parse_int(spec, text);
    case Type::Float: return parse_float(spec, text);
    case Type::Bool: return parse_bool(spec, text);
    default: return parse_string(spec, text);
  }
}

std::string format_value(const KeySpec& spec, const Value& v) {
  auto list = [](const auto& items, auto format) {
    std::string out = "[";
    for (const auto& x : items) out += (out.size() > 1 ? ", " : "") + format(x);
    return out + "]";
  };
  switch (spec.type()) {
    case Type::Int: return std::to_string(std::get<int64_t>(v));
    case Type::Float: return std::isnan(std::get<double>(v)) ? "auto" : format_number(std::get<double>(v));
    case Type::Bool: return std::get<bool>(v) ? "true" : "false";
    case Type::FloatList: return list(std::get<std::vector<double>>(v), format_number);
    case Type::IntList: return list(std::get<std::vector<int64_t>>(v), [](int64_t x) { return std::to_string(x); });
    case Type::String: break;
  }
  const std::string& s = std::get<std::string>(v);
  if (!spec.choices.empty()) return s;
  std::string out = "\"";  // free text: double-quoted with YAML escapes, so anything reads back
  for (unsigned char ch : s) {
    if (ch == '"' || ch == '\\') {
      out += '\\', out += char(ch);
    } else if (ch < 0x20 || ch == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", ch);
      out += buf;
    } else {
      out += char(ch);
    }
  }
  return out + "\"";
}

// ---- Layers ------------------------------------------------------------------------------

// One explicit `key: value` from a file or the command line; `where` prefixes its errors.
struct Setting {
  std::string key;
  YAML::Node value;
  std::string where;
};

YAML::Node parse_yaml(const std::string& text, const std::string& source) {
  try {
    return YAML::Load(text);
  } catch (const YAML::DeepRecursion& e) {  // its own message is a misleading "bad file"
    throw Error(source + ": YAML nested too deeply (over " + std::to_string(e.depth()) + " levels) at line " +
                std::to_string(e.mark.line + 1));
  } catch (const YAML::Exception& e) {
    throw Error(source + ": YAML syntax error at line " + std::to_string(e.mark.line + 1) + ", column " +
                std::to_string(e.mark.column + 1) + ": " + e.msg);
  }
}

// The settings of one YAML document; its `base:` (if any) goes to *base.
std::vector<Setting> read_document(const YAML::Node& doc, const std::string& source, std::string* base) {
  std::vector<Setting> out;
  if (doc.IsNull()) return out;
  if (!doc.IsMap()) throw Error(source + ": a config must be a map of sections (model:, train:, ...), got " + describe(doc));
  std::map<std::string, int> line_of;  // to reject a key given twice
  auto where = [&](const YAML::Node& key) { return source + ":" + std::to_string(key.Mark().line + 1); };
  auto name_of = [&](const YAML::Node& key) {
    if (!key.IsScalar()) throw Error(where(key) + ": config keys must be plain names, got " + describe(key));
    return key.Scalar();
  };
  for (const auto& section : doc) {
    const std::string name = name_of(section.first);
    if (name == "base") {
      if (!section.second.IsScalar() || section.second.Scalar().empty())
        throw Error(where(section.first) + ": base: expected a file name, got " + describe(section.second));
      *base = section.second.Scalar();
      continue;
    }
    if (std::find(sections().begin(), sections().end(), name) == sections().end()) {
      throw Error(where(section.first) + ": " + unknown_key(name));
    }
    if (section.second.IsNull()) continue;  // `moe:` with nothing under it
    if (!section.second.IsMap())
      throw Error(where(section.first) + ": " + name + ": expected a map of keys, got " + describe(section.second));
    for (const auto& entry : section.second) {
      const std::string key = name + "." + name_of(entry.first);
      if (!find_key(key)) throw Error(where(entry.first) + ": " + unknown_key(key));
      const int line = entry.first.Mark().line + 1;
      auto [it, fresh] = line_of.emplace(key, line);
      if (!fresh)
        throw Error(where(entry.first) + ": " + key + " is given twice (lines " + std::to_string(it->second) +
                    " and " + std::to_string(line) + ")");
      out.push_back({key, entry.second, where(entry.first)});
    }
  }
  return out;
}

std::vector<Setting> read_overrides(const std::vector<std::string>& overrides) {
  std::vector<Setting> out;
  for (const std::string& o : overrides) {
    const size_t eq = o.find('=');
    if (eq == std::string::npos) throw Error("malformed override " + show(o) + ": expected key=value");
    std::string key = o.substr(0, eq);
    key.erase(0, key.find_first_not_of(" \t"));
    key.erase(key.find_last_not_of(" \t") + 1);
    if (key.empty()) throw Error("malformed override " + show(o) + ": empty key before '='");
    if (!find_key(key)) throw Error(unknown_key(key));
    out.push_back({key, parse_yaml(o.substr(eq + 1), "override " + show(o)), ""});
  }
  return out;
}

void assign(Values& values, const KeySpec& spec, const YAML::Node& node, const std::string& where) {
  try {
    values[spec.key] = parse_value(spec, node);
  } catch (const Error& e) {
    throw Error(where.empty() ? std::string(e.what()) : where + ": " + e.what());
  }
}

void apply_preset(Values& values) {
  for (const auto& [key, text] : preset_values(std::get<std::string>(values.at("model.preset"))))
    values[key] = parse_value(*find_key(key), YAML::Load(text));
}

// A layer's preset first, then its explicit keys.
void apply_layer(Values& values, const std::vector<Setting>& settings) {
  for (auto it = settings.rbegin(); it != settings.rend(); ++it) {
    if (it->key != "model.preset") continue;
    assign(values, *find_key(it->key), it->value, it->where);
    apply_preset(values);
    break;
  }
  for (const Setting& s : settings) assign(values, *find_key(s.key), s.value, s.where);
}

// Applies a document and, before it, its base chain. `chain` holds the files being read (cycles).
void apply_document(Values& values, const std::string& text, const std::string& source, const fs::path& dir,
                    std::vector<fs::path>& chain) {
  std::string base;
  const std::vector<Setting> settings = read_document(parse_yaml(text, source), source, &base);
  if (!base.empty()) {
    const fs::path path = fs::weakly_canonical(dir / base);
    std::string cycle;
    for (const fs::path& p : chain) cycle += p.string() + " -> ";
    if (std::find(chain.begin(), chain.end(), path) != chain.end())
      throw Error(source + ": config base cycle: " + cycle + path.string());
    SL_CHECK(chain.size() < 32, source + ": config base chain deeper than 32 files: " + cycle + "...");
    std::ifstream in(path, std::ios::binary);
    std::stringstream buffer;
    if (fs::is_regular_file(path)) buffer << in.rdbuf();
    if (!fs::is_regular_file(path) || !in)
      throw Error(source + ": cannot read base config " + show(base) + " (looked for " + path.string() + ")");
    chain.push_back(path);
    apply_document(values, buffer.str(), path.string(), path.parent_path(), chain);
    chain.pop_back();
  }
  apply_layer(values, settings);
}

}  // namespace

// ---- Config ------------------------------------------------------------------------------

Config::Config() {
  for (const KeySpec& k : schema()) values_[k.key] = k.default_value;
  apply_preset(values_);
}

Config Config::from_string(const std::string& yaml_text, const std::vector<std::string>& overrides) {
  Config c;
  std::vector<fs::path> chain;
  apply_document(c.values_, yaml_text, "<config>", fs::current_path(), chain);
  apply_layer(c.values_, read_overrides(overrides));
  check_dependencies(c);
  return c;
}

Config Config::load(const std::string& yaml_path, const std::vector<std::string>& overrides) {
  const fs::path path = fs::weakly_canonical(yaml_path);
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  if (fs::is_regular_file(path)) buffer << in.rdbuf();
  if (!fs::is_regular_file(path) || !in) throw Error("cannot read config file " + show(yaml_path));
  Config c;
  std::vector<fs::path> chain = {path};
  apply_document(c.values_, buffer.str(), yaml_path, path.parent_path(), chain);
  apply_layer(c.values_, read_overrides(overrides));
  if (c.s("run.name").empty()) c.values_["run.name"] = fs::path(yaml_path).stem().string();
  check_dependencies(c);
  return c;
}

const Value& Config::get(const std::string& key, Type type) const {
  const KeySpec* spec = find_key(key);
  if (!spec) throw Error(unknown_key(key));
  SL_CHECK(spec->type() == type, "config key '" + key + "' holds " + type_name(spec->type()) + ", not " + type_name(type));
  return values_.at(key);
}

int64_t Config::i(const std::string& key) const { return std::get<int64_t>(get(key, Type::Int)); }
double Config::f(const std::string& key) const { return std::get<double>(get(key, Type::Float)); }
bool Config::b(const std::string& key) const { return std::get<bool>(get(key, Type::Bool)); }
const std::string& Config::s(const std::string& key) const { return std::get<std::string>(get(key, Type::String)); }
const std::vector<double>& Config::fl(const std::string& key) const {
  return std::get<std::vector<double>>(get(key, Type::FloatList));
}
const std::vector<int64_t>& Config::il(const std::string& key) const {
  return std::get<std::vector<int64_t>>(get(key, Type::IntList));
}
bool Config::is_auto(const std::string& key) const { return std::isnan(f(key)); }

void Config::set(const std::string& key, const std::string& value) {
  Config next = *this;
  apply_layer(next.values_, read_overrides({key + "=" + value}));
  check_dependencies(next);
  *this = std::move(next);
}

std::string Config::to_yaml() const {
  std::string out = "# sinklab configuration, fully resolved (every key; comments are the schema docs)\n";
  std::string section;
  for (const KeySpec& k : schema()) {
    if (k.section() != section) {
      section = k.section();
      out += "\n" + section + ":\n";
    }
    std::string line = "  " + k.key.substr(section.size() + 1) + ": " + format_value(k, values_.at(k.key));
    line.resize(std::max<size_t>(line.size() + 1, 40), ' ');
    out += line + "# " + k.doc + "\n";
  }
  return out;
}

}  // namespace sl
