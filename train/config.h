// A fully resolved, validated experiment configuration: one typed value for every schema key.
//
// Resolution, in layers: schema defaults (with the default preset), then each file of the
// `base:` chain from the root down, then the command-line overrides. Within a layer, a
// `model.preset` it sets is applied first, then the layer's explicit keys, so explicit keys
// always beat the preset and a child's preset beats its base's choices.
// Every mistake (unknown key, wrong type, out of range, not a choice, a broken rule between
// keys, YAML syntax) is an sl::Error with a one-line message naming the key and what is valid.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "train/schema.h"

namespace sl {

class Config {
 public:
  Config();  // all defaults

  // `overrides` are "section.key=value" strings; values are YAML ("[0.1, 0.3]", "1e-3", "true").
  // An empty run.name becomes the file's stem.
  static Config load(const std::string& yaml_path, const std::vector<std::string>& overrides = {});
  // A `base:` here is relative to the working directory.
  static Config from_string(const std::string& yaml_text, const std::vector<std::string>& overrides = {});

  int64_t i(const std::string& key) const;
  double f(const std::string& key) const;  // NaN when the key says `auto`
  bool b(const std::string& key) const;
  const std::string& s(const std::string& key) const;
  const std::vector<double>& fl(const std::string& key) const;
  const std::vector<int64_t>& il(const std::string& key) const;
  bool is_auto(const std::string& key) const;

  // One override, validated with the rest of the config; on error the config is unchanged.
  void set(const std::string& key, const std::string& value);

  // Every key, grouped by section, with docs as comments; from_string(to_yaml()) reproduces it.
  std::string to_yaml() const;

 private:
  const Value& get(const std::string& key, Type type) const;
  std::map<std::string, Value> values_;
};

}  // namespace sl
