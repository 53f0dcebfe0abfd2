// The schema: every valid configuration key with its type, default, valid range or choices and
// a one-line doc; the model presets; and the rules that tie keys together. Adding a key to the
// experiment means adding one line to schema.cpp; parsing, validation and to_yaml follow.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace sl {

class Config;

// Alternatives in the order of Type, so a Value's index() is its Type.
enum class Type { Int, Float, Bool, String, FloatList, IntList };
using Value = std::variant<int64_t, double, bool, std::string, std::vector<double>, std::vector<int64_t>>;

struct KeySpec {
  std::string key;                   // "section.name"
  Value default_value;               // its alternative is the key's type
  std::optional<double> min, max;    // inclusive bounds for numbers (each element of a list)
  std::vector<std::string> choices;  // for strings; empty = free text
  bool allow_auto = false;           // Float keys that accept the word `auto` (stored as NaN)
  std::string doc;

  Type type() const { return Type(default_value.index()); }
  std::string section() const { return key.substr(0, key.find('.')); }
};

// Every valid key, grouped by section in the order to_yaml writes them.
const std::vector<KeySpec>& schema();
// The spec of `key`, or nullptr.
const KeySpec* find_key(const std::string& key);
// Section names in schema order.
const std::vector<std::string>& sections();

// (key, value as YAML text) pairs a model.preset sets before a file's explicit keys.
const std::vector<std::pair<std::string, std::string>>& preset_values(const std::string& preset);

// Throws sl::Error naming the keys when a rule between keys is broken (d_model % n_heads, ...).
void check_dependencies(const Config& c);

// model.d_ff = 0 means auto: gated FFNs (swiglu, geglu, reglu) keep the parameter count of a
// 4*d FFN with 8/3*d rounded up to a multiple of 8 (688 for d = 256); the others use 4*d.
int64_t auto_d_ff(int64_t d_model, const std::string& ffn);

// Sequences a forward pass takes: train.micro_batch, or with 0 the global batch dealt evenly to the
// data-parallel processes (all of it with one process).
int64_t micro_batch(const Config& c);

// stats.source with auto resolved: train where the training forward's leading block is the probe
// forward of its tokens (a decoder, no query in it seeing a later key, micro-batches of at least
// probe_batch rows), else probe.
std::string stats_source(const Config& c);

}  // namespace sl
