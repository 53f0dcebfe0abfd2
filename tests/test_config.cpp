#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

#include "tests/error_of.h"
#include "tests/temp_dir.h"
#include "engine/error.h"
#include "engine/rng.h"
#include "train/config.h"
#include "train/model_builder.h"

using namespace sl;
namespace fs = std::filesystem;
using Catch::Contains;

namespace {

const std::string kConfigs = std::string(SINKLAB_SOURCE_DIR) + "/configs/";

using sl::testing::error_of;

std::string error_of(const std::string& yaml, const std::vector<std::string>& overrides = {}) {
  return error_of([&] { Config::from_string(yaml, overrides); });
}

// A scratch directory for config files, removed at the end of the test.
using sl::testing::TempDir;

}  // namespace

TEST_CASE("defaults cover every schema key with the documented values", "[config]") {
  Config c;
  REQUIRE(c.s("model.type") == "decoder");
  REQUIRE(c.s("model.preset") == "llama");
  REQUIRE(c.i("model.d_model") == 256);
  REQUIRE(c.i("model.n_layers") == 4);
  REQUIRE(c.s("model.norm") == "rmsnorm");
  REQUIRE(c.s("model.pos") == "rope");
  REQUIRE(c.s("model.ffn") == "swiglu");
  REQUIRE_FALSE(c.b("model.bias"));
  REQUIRE_FALSE(c.b("model.tie_embeddings"));
  REQUIRE(c.f("model.norm_eps") == 1e-5);
  REQUIRE(c.is_auto("attention.sigmoid_bias"));
  REQUIRE_FALSE(c.is_auto("train.lr"));
  REQUIRE(c.f("train.lr") == 3e-4);
  REQUIRE(c.b("train.decay_embeddings"));
  REQUIRE(c.fl("stats.eps") == std::vector<double>{0.3});
  REQUIRE(c.il("stats.map_layers").empty());
  REQUIRE(c.s("data.dir") == "data/cache/default");
  REQUIRE(c.s("run.name").empty());
  REQUIRE(Config::from_string("").to_yaml() == c.to_yaml());
  // Every key has a doc and defaults satisfy their own ranges and choices (reloading checks them).
  for (const KeySpec& k : schema()) REQUIRE_FALSE(k.doc.empty());
  REQUIRE(sections() == std::vector<std::string>{"model", "attention", "moe", "vit", "data", "train", "stats", "run"});
  REQUIRE(auto_d_ff(256, "swiglu") == 688);
  REQUIRE(auto_d_ff(32, "geglu") == 88);
  REQUIRE(auto_d_ff(256, "gelu") == 1024);
}

TEST_CASE("presets set their defaults and explicit keys override them", "[config]") {
  Config g = Config::from_string("model:\n  preset: gpt2\n");
  REQUIRE(g.s("model.norm") == "layernorm");
  REQUIRE(g.s("model.pos") == "learned");
  REQUIRE(g.s("model.ffn") == "gelu");
  REQUIRE(g.b("model.bias"));
  REQUIRE(g.b("model.tie_embeddings"));
  // An explicit key wins wherever it appears in the file, the preset fills the rest.
  Config mixed = Config::from_string("model:\n  pos: alibi\n  preset: gpt2\n");
  REQUIRE(mixed.s("model.pos") == "alibi");
  REQUIRE(mixed.s("model.norm") == "layernorm");
  // Same on the command line, in either order.
  Config cli = Config::from_string("", {"model.norm=rmsnorm", "model.preset=gpt2"});
  REQUIRE(cli.s("model.norm") == "rmsnorm");
  REQUIRE(cli.s("model.ffn") == "gelu");
  // A later layer's preset replaces an earlier layer's explicit choices.
  Config later = Config::from_string("model:\n  norm: rmsnorm\n", {"model.preset=gpt2"});
  REQUIRE(later.s("model.norm") == "layernorm");
  // preset none changes nothing.
  REQUIRE(Config::from_string("model: {preset: none, norm: layernorm}").s("model.pos") == "rope");
}

TEST_CASE("the shipped configs load; gpt2.yaml inherits default.yaml", "[config]") {
  Config d = Config::load(kConfigs + "default.yaml");
  REQUIRE(d.s("run.name") == "default");
  REQUIRE(d.s("data.source") == "corpus");
  REQUIRE(d.s("model.norm") == "rmsnorm");
  Config g = Config::load(kConfigs + "gpt2.yaml");
  REQUIRE(g.s("run.name") == "gpt2");
  REQUIRE(g.i("model.d_model") == 256);  // from the base
  REQUIRE(g.s("model.norm") == "layernorm");
  REQUIRE(g.b("model.tie_embeddings"));
  Config t = Config::load(kConfigs + "tiny.yaml", {"run.name=smoke"});
  REQUIRE(t.s("data.source") == "random");
  REQUIRE(t.i("model.d_model") == 32);
  REQUIRE(t.i("model.n_layers") == 2);
  REQUIRE(t.i("model.n_heads") == 2);
  REQUIRE(t.i("model.context") == 32);
  REQUIRE(t.i("data.vocab") == 64);
  REQUIRE(t.s("run.name") == "smoke");
}

TEST_CASE("base chains resolve relative to each file; cycles and missing bases are errors", "[config]") {
  TempDir dir("config");
  dir.write("root.yaml", "model:\n  d_model: 64\n  n_layers: 3\ntrain:\n  lr: 1.0e-3\n");
  dir.write("sub/mid.yaml", "base: ../root.yaml\nmodel:\n  n_layers: 5\n  preset: gpt2\n");
  const std::string leaf = dir.write("sub/leaf.yaml", "base: mid.yaml\nmodel:\n  pos: rope\n");
  Config c = Config::load(leaf, {"train.lr=2e-3"});
  REQUIRE(c.i("model.d_model") == 64);  // root
  REQUIRE(c.i("model.n_layers") == 5);  // mid overrides root
  REQUIRE(c.s("model.norm") == "layernorm");  // mid's preset
  REQUIRE(c.s("model.pos") == "rope");  // leaf overrides mid's preset
  REQUIRE(c.f("train.lr") == 2e-3);  // command line overrides all
  REQUIRE(c.s("run.name") == "leaf");

  const std::string a = dir.write("a.yaml", "base: b.yaml\n");
  dir.write("b.yaml", "base: a.yaml\n");
  REQUIRE_THAT(error_of([&] { Config::load(a); }), Contains("config base cycle:") && Contains("a.yaml -> "));
  const std::string self = dir.write("self.yaml", "base: self.yaml\n");
  REQUIRE_THAT(error_of([&] { Config::load(self); }), Contains("config base cycle"));
  const std::string orphan = dir.write("orphan.yaml", "base: nowhere.yaml\n");
  REQUIRE_THAT(error_of([&] { Config::load(orphan); }), Contains("cannot read base config 'nowhere.yaml'"));
  REQUIRE_THAT(error_of([&] { Config::load((dir.path / "absent.yaml").string()); }),
               Contains("cannot read config file"));
  REQUIRE_THAT(error_of([&] { Config::load(dir.path.string()); }), Contains("cannot read config file"));
  REQUIRE_THAT(error_of("base: [a, b]\n"), Contains("base: expected a file name, got a list"));
  // An error inside a base names that file and line.
  const std::string bad = dir.write("bad.yaml", "train:\n  steps: 10\n  lr: fast\n");
  const std::string child = dir.write("child.yaml", "base: bad.yaml\n");
  REQUIRE_THAT(error_of([&] { Config::load(child); }),
               Contains("bad.yaml:3: train.lr: expected a number, got 'fast'"));
}

TEST_CASE("overrides parse ints, floats, bools, lists, strings and auto", "[config]") {
  Config c = Config::from_string("", {"model.n_layers=6", "train.lr=1e-3", "train.beta2=0.999",
                                      "model.bias=true", "train.decay_embeddings=false", "stats.eps=[0.1,0.3]",
                                      "stats.map_layers=[0, 2]", "run.name=my_run", "data.dir=/tmp/some dir",
                                      "attention.sigmoid_bias=-2.5", "train.steps=1e6", "moe.top_k=+3",
                                      " model.context = 128", "data.backcopy_text="});
  REQUIRE(c.i("model.n_layers") == 6);
  REQUIRE(c.f("train.lr") == 1e-3);
  REQUIRE(c.f("train.beta2") == 0.999);
  REQUIRE(c.b("model.bias"));
  REQUIRE_FALSE(c.b("train.decay_embeddings"));
  REQUIRE(c.fl("stats.eps") == std::vector<double>{0.1, 0.3});
  REQUIRE(c.il("stats.map_layers") == std::vector<int64_t>{0, 2});
  REQUIRE(c.s("run.name") == "my_run");
  REQUIRE(c.s("data.dir") == "/tmp/some dir");
  REQUIRE(c.f("attention.sigmoid_bias") == -2.5);
  REQUIRE_FALSE(c.is_auto("attention.sigmoid_bias"));
  REQUIRE(c.i("train.steps") == 1000000);
  REQUIRE(c.i("moe.top_k") == 3);
  REQUIRE(c.i("model.context") == 128);
  REQUIRE(c.s("data.backcopy_text").empty());
  // A single number is a one-element list; the last override of a key wins; auto comes back.
  Config d = Config::from_string("", {"stats.eps=0.5", "model.n_layers=2", "model.n_layers=3",
                                      "attention.sigmoid_bias=1", "attention.sigmoid_bias=auto"});
  REQUIRE(d.fl("stats.eps") == std::vector<double>{0.5});
  REQUIRE(d.i("model.n_layers") == 3);
  REQUIRE(d.is_auto("attention.sigmoid_bias"));
}

TEST_CASE("set validates and leaves the config unchanged on error", "[config]") {
  Config c;
  c.set("model.n_heads", "8");
  REQUIRE(c.i("model.n_heads") == 8);
  c.set("model.preset", "gpt2");
  REQUIRE(c.s("model.norm") == "layernorm");
  const std::string before = c.to_yaml();
  REQUIRE_THAT(error_of([&] { c.set("model.n_heads", "7"); }),
               Contains("model.d_model (256) must be divisible by model.n_heads (7)"));
  REQUIRE_THAT(error_of([&] { c.set("model.nheads", "2"); }), Contains("did you mean 'model.n_heads'?"));
  REQUIRE(c.to_yaml() == before);
}

TEST_CASE("unknown keys are rejected with the closest valid key", "[config]") {
  REQUIRE(error_of("model:\n  d_modle: 128\n") ==
          "<config>:2: unknown config key 'model.d_modle'; did you mean 'model.d_model'?");
  REQUIRE(error_of("", {"model.d_modle=128"}) ==
          "unknown config key 'model.d_modle'; did you mean 'model.d_model'?");
  // The last component finds keys in other sections; sections are suggested too.
  REQUIRE_THAT(error_of("train:\n  d_model: 128\n"), Contains("'train.d_model'; did you mean 'model.d_model'?"));
  REQUIRE_THAT(error_of("modle:\n  d_model: 128\n"), Contains("unknown config key 'modle'; did you mean 'model'?"));
  REQUIRE_THAT(error_of("", {"stats.epsilon=0.1"}), Contains("did you mean 'stats.eps'?"));
  // Nothing close: no suggestion.
  REQUIRE(error_of("", {"model.zzzzzzzzzzzz=1"}) == "unknown config key 'model.zzzzzzzzzzzz'");
  REQUIRE_THAT(error_of("", {"model=3"}), Contains("unknown config key 'model'"));
  // Accessors name unknown keys and wrong types too.
  Config c;
  REQUIRE_THAT(error_of([&] { c.i("model.d_modle"); }), Contains("did you mean 'model.d_model'?"));
  REQUIRE_THAT(error_of([&] { c.i("model.norm"); }), Contains("'model.norm' holds text, not an integer"));
  REQUIRE_THAT(error_of([&] { c.is_auto("model.d_model"); }), Contains("holds an integer, not a number"));
}

TEST_CASE("values of the wrong type, out of range or not a choice are rejected", "[config]") {
  REQUIRE(error_of("", {"model.n_layers=four"}) == "model.n_layers: expected an integer, got 'four'");
  REQUIRE_THAT(error_of("model:\n  n_layers: four\n"), Contains("<config>:2: model.n_layers: expected an integer, got 'four'"));
  REQUIRE_THAT(error_of("", {"model.n_layers=2.5"}), Contains("model.n_layers: expected an integer, got '2.5'"));
  REQUIRE_THAT(error_of("", {"train.lr=fast"}), Contains("train.lr: expected a number, got 'fast'"));
  REQUIRE_THAT(error_of("", {"train.lr=auto"}), Contains("train.lr: expected a number, got 'auto'"));
  REQUIRE_THAT(error_of("", {"train.lr=nan"}), Contains("expected a number, got 'nan'"));
  REQUIRE_THAT(error_of("", {"train.lr=.inf"}), Contains("expected a number, got '.inf'"));
  REQUIRE_THAT(error_of("", {"attention.sigmoid_bias=x"}), Contains("expected a number or auto, got 'x'"));
  REQUIRE_THAT(error_of("", {"model.bias=maybe"}), Contains("model.bias: expected true or false, got 'maybe'"));
  REQUIRE_THAT(error_of("", {"stats.eps=[0.1, x]"}), Contains("stats.eps: expected a number, got 'x'"));
  REQUIRE_THAT(error_of("", {"stats.eps=[[0.1]]"}), Contains("stats.eps: expected a list of numbers, got an element that is a list"));
  REQUIRE_THAT(error_of("", {"stats.eps={a: 1}"}), Contains("stats.eps: expected a list of numbers, got a map"));
  REQUIRE_THAT(error_of("", {"model.n_layers="}), Contains("model.n_layers: expected an integer, got nothing"));
  // Ranges.
  REQUIRE(error_of("", {"model.n_layers=0"}) == "model.n_layers: '0' is out of range [1, 1024]");
  REQUIRE_THAT(error_of("", {"train.lr=-1e-3"}), Contains("train.lr: '-1e-3' is out of range [0, 10]"));
  REQUIRE_THAT(error_of("", {"train.lr=1e999"}), Contains("train.lr: '1e999' is out of range [0, 10]"));
  REQUIRE_THAT(error_of("", {"stats.eps=[0.3, 2]"}), Contains("stats.eps: '2' is out of range [0, 1]"));
  REQUIRE_THAT(error_of("", {"model.d_model=9999999999999999999999"}),
               Contains("model.d_model: '9999999999999999999999' is out of range [1, 65536]"));
  REQUIRE_THAT(error_of("", {"data.seed=-9999999999999999999999"}), Contains("out of range"));
  REQUIRE_THAT(error_of("", {"train.steps=1e300"}), Contains("train.steps: '1e300' is out of range"));
  // Choices, with a suggestion when one is close.
  REQUIRE(error_of("", {"model.norm=batchnorm"}) == "model.norm: expected one of rmsnorm|layernorm, got 'batchnorm'");
  REQUIRE_THAT(error_of("", {"model.norm=rmsnrom"}), Contains("got 'rmsnrom'; did you mean 'rmsnorm'?"));
  REQUIRE_THAT(error_of("", {"attention.mask=causall"}),
               Contains("expected one of causal|prefix|sliding|bidirectional, got 'causall'; did you mean 'causal'?"));
  REQUIRE_THAT(error_of("", {"model.norm="}), Contains("model.norm: expected one of rmsnorm|layernorm, got ''"));
}

TEST_CASE("structural mistakes: sections as scalars, scalars as maps, malformed overrides", "[config]") {
  REQUIRE_THAT(error_of("model: 4\n"), Contains("<config>:1: model: expected a map of keys, got '4'"));
  REQUIRE_THAT(error_of("model: [1, 2]\n"), Contains("model: expected a map of keys, got a list"));
  REQUIRE_THAT(error_of("model:\n  d_model:\n    x: 1\n"), Contains("<config>:2: model.d_model: expected an integer, got a map"));
  REQUIRE_THAT(error_of("run:\n  name: [a]\n"), Contains("run.name: expected text, got a list"));
  REQUIRE_THAT(error_of("- model\n- train\n"), Contains("a config must be a map of sections (model:, train:, ...), got a list"));
  REQUIRE_THAT(error_of("just words"), Contains("a config must be a map of sections"));
  REQUIRE_THAT(error_of("model:\n  d_model: 64\n  d_model: 128\n"),
               Contains("<config>:3: model.d_model is given twice (lines 2 and 3)"));
  REQUIRE_THAT(error_of("? [a, b]\n: 1\n"), Contains("config keys must be plain names, got a list"));
  REQUIRE(error_of("", {"model.n_layers"}) == "malformed override 'model.n_layers': expected key=value");
  REQUIRE(error_of("", {"=4"}) == "malformed override '=4': empty key before '='");
  REQUIRE_THAT(error_of("", {"  =4"}), Contains("empty key"));
  REQUIRE_THAT(error_of("", {"stats.eps=[0.1,"}), Contains("override 'stats.eps=[0.1,': YAML syntax error at line 1"));
  // Empty sections are fine.
  REQUIRE(Config::from_string("moe:\nvit:\n").i("moe.experts") == 0);
}

TEST_CASE("YAML syntax errors name the line", "[config]") {
  REQUIRE_THAT(error_of("model:\n  d_model: 64\n  n_heads: [4\ntrain:\n  lr: 1\n"), Contains("YAML syntax error at line"));
  REQUIRE_THAT(error_of("model:\n  d_model: 64\n n_heads: 4\n"), Contains("<config>: YAML syntax error at line 3"));
  REQUIRE_THAT(error_of("model: {d_model: 64\n"), Contains("YAML syntax error"));
  TempDir dir("config");
  const std::string path = dir.write("broken.yaml", "train:\n  steps: 10\n lr: 1\n");
  REQUIRE_THAT(error_of([&] { Config::load(path); }), Contains("broken.yaml: YAML syntax error at line 3"));
}

TEST_CASE("dependencies between keys are checked", "[config]") {
  REQUIRE(error_of("", {"model.n_heads=3"}) == "model.d_model (256) must be divisible by model.n_heads (3)");
  REQUIRE_THAT(error_of("", {"model.d_model=36", "model.n_heads=4"}),
               Contains("model.pos = rope needs an even head dim, got model.d_model / model.n_heads = 36 / 4 = 9"));
  REQUIRE_NOTHROW(Config::from_string("", {"model.d_model=36", "model.n_heads=4", "model.pos=alibi"}));
  REQUIRE_THAT(error_of("", {"attention.mask=prefix", "attention.prefix_len=256"}),
               Contains("attention.prefix_len (256) must be < model.context (256) when attention.mask = prefix"));
  REQUIRE_NOTHROW(Config::from_string("", {"attention.mask=prefix", "attention.prefix_len=255"}));
  REQUIRE_THAT(error_of("", {"attention.mask=sliding"}),
               Contains("attention.window must be >= 1 when attention.mask = sliding, got 0"));
  REQUIRE(Config::from_string("", {"attention.mask=sliding", "attention.window=16"}).i("attention.window") == 16);
  REQUIRE_THAT(error_of("", {"moe.experts=2", "moe.top_k=3"}), Contains("moe.top_k (3) must be <= moe.experts (2)"));
  REQUIRE_NOTHROW(Config::from_string("", {"moe.top_k=3"}));  // dense: top_k unused
  REQUIRE_THAT(error_of("", {"train.micro_batch=5"}),
               Contains("train.micro_batch (5) must divide train.batch_size (16); 0 = no accumulation"));
  REQUIRE(Config::from_string("", {"train.micro_batch=4"}).i("train.micro_batch") == 4);
  REQUIRE_THAT(error_of("", {"vit.patch=5"}), Contains("vit.image_size (28) must be divisible by vit.patch (5)"));
  REQUIRE_THAT(error_of("", {"model.context=32"}), Contains("stats.probe_len (64) must be <= model.context (32)"));
}

TEST_CASE("to_yaml reloads to the same config", "[config]") {
  std::vector<Config> configs = {
      Config(), Config::load(kConfigs + "gpt2.yaml"), Config::load(kConfigs + "tiny.yaml"),
      Config::from_string("", {"train.lr=0.1", "train.beta2=0.999", "stats.eps=[0.1, 0.3, 1e-5]",
                               "attention.sigmoid_bias=-3.25", "model.init_std=0.0123456789012345678",
                               "stats.map_layers=[1,3]", "run.name='quote\" back\\\\slash # hash: colon'",
                               "data.backcopy_text=\"two\\nlines\\ttab\"", "model.preset=gpt2", "model.norm=rmsnorm"})};
  REQUIRE(configs[3].s("run.name") == "quote\" back\\\\slash # hash: colon");
  REQUIRE(configs[3].s("data.backcopy_text") == "two\nlines\ttab");
  for (const Config& c : configs) {
    const std::string text = c.to_yaml();
    Config back = Config::from_string(text);
    REQUIRE(back.to_yaml() == text);
    for (const KeySpec& k : schema())
      if (k.type() == Type::Float && !c.is_auto(k.key)) REQUIRE(back.f(k.key) == c.f(k.key));
  }
  REQUIRE(Config::from_string(configs[3].to_yaml()).s("run.name") == configs[3].s("run.name"));
  REQUIRE(Config::from_string(configs[3].to_yaml()).s("model.norm") == "rmsnorm");  // explicit beats preset
  REQUIRE_THAT(Config().to_yaml(), Contains("\nmodel:\n  type: decoder") && Contains("sigmoid_bias: auto"));
}

TEST_CASE("garbage input is rejected with sl::Error, never a crash", "[config]") {
  Rng rng(7);
  int rejected = 0;
  for (int trial = 0; trial < 300; ++trial) {
    std::string bytes(1 + rng.uniform_int(200), '\0');
    for (char& ch : bytes) ch = char(trial % 2 ? rng.uniform_int(256) : " :-[]{}#&*!|>'\"%@`,?\nab1."[rng.uniform_int(27)]);
    const std::string e = error_of(bytes);
    rejected += e != "no error";
    error_of("", {"model.d_model=" + bytes});
    error_of("", {bytes});
  }
  REQUIRE(rejected > 250);  // a few token soups may parse as an empty or valid config
  const std::string deep_list = std::string(1000, '[') + std::string(1000, ']');
  REQUIRE_THAT(error_of(deep_list), Contains("<config>: YAML nested too deeply (over "));
  REQUIRE_THAT(error_of("model:\n  d_model: " + deep_list + "\n"), Contains("YAML nested too deeply"));
  REQUIRE_THAT(error_of("model:\n  d_model: [[[1]]]\n"), Contains("model.d_model: expected an integer, got a list"));
  std::string deep_map;
  for (int k = 0; k < 1000; ++k) deep_map += "{model: ";
  deep_map += '1';
  deep_map.append(1000, '}');
  REQUIRE_THAT(error_of(deep_map), Contains("YAML nested too deeply"));
  auto indented = [](int depth) {
    std::string text = "model:\n";
    for (int k = 0; k < depth; ++k) text += std::string(2 + 2 * k, ' ') + "d_model:\n";
    return text + std::string(2 + 2 * depth, ' ') + "x: 1\n";
  };
  REQUIRE_THAT(error_of(indented(1000)), Contains("YAML nested too deeply (over 500 levels) at line 499"));
  REQUIRE_THAT(error_of(indented(100)), Contains("<config>:2: model.d_model: expected an integer, got a map"));
  REQUIRE_THAT(error_of(std::string(100000, '[')), Contains("YAML nested too deeply"));
  REQUIRE_THAT(error_of("model:\n  d_model: 9999999999999999999999\n"), Contains("out of range"));
  REQUIRE_THAT(error_of("train:\n  lr: " + std::string(5000, '9') + "\n"), Contains("train.lr: '99999999") && Contains("...' is out of range"));
  REQUIRE_THAT(error_of(std::string("model:\n  norm: \xff\xfe\x01\n")), Contains("YAML syntax error") || Contains("\\xff\\xfe\\x01"));
}

TEST_CASE("sigmoid_bias auto is -log(model.context) for decoders and -log T for ViT", "[config]") {
  Config dec = Config::from_string("", {"attention.kernel=sigmoid", "model.context=128"});
  CHECK(train::decoder_config(dec, 10).attn.sigmoid_bias == Approx(-std::log(128.f)));
  Config set = Config::from_string("", {"attention.kernel=sigmoid", "attention.sigmoid_bias=-2.5"});
  CHECK(train::decoder_config(set, 10).attn.sigmoid_bias == -2.5f);
  Config vit = Config::from_string("", {"model.type=vit", "attention.kernel=sigmoid", "attention.mask=bidirectional"});
  CHECK(std::isnan(train::vit_config(vit).attn.sigmoid_bias));
}
