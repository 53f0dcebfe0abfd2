// The pieces of `sinklab export` on hand-made inputs: the safetensors bytes, JSON text, the
// transformers-class decision and the tokenizer.json refusals. The whole export against PyTorch
// is tests/python/test_export.py.
#include <catch2/catch.hpp>
#include <cstring>

#include "data/files.h"
#include "data/hf_tokenizer.h"
#include "engine/autograd.h"
#include "engine/json.h"
#include "engine/safetensors.h"
#include "tests/temp_dir.h"
#include "train/export_hf.h"

using namespace sl;
using Catch::Matchers::Contains;

TEST_CASE("safetensors: length, padded header, then the floats in name order", "[export]") {
  testing::TempDir dir("safetensors");
  save_safetensors(dir / "t.safetensors",
                   {{"b", Tensor::from({2, 1}, {1.f, -2.f})}, {"a", Tensor::scalar(0.5f)}}, {{"format", "pt"}});
  const std::string bytes = data::read_file(dir / "t.safetensors");
  const std::string header =
      "{\"__metadata__\":{\"format\":\"pt\"},\"a\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]},"
      "\"b\":{\"dtype\":\"F32\",\"shape\":[2,1],\"data_offsets\":[4,12]}}";
  const size_t padded = (header.size() + 7) / 8 * 8;
  uint64_t n;
  std::memcpy(&n, bytes.data(), 8);
  REQUIRE(n == padded);
  REQUIRE(bytes.substr(8, n) == header + std::string(padded - header.size(), ' '));
  REQUIRE(bytes.size() == 8 + n + 12);
  float values[3];
  std::memcpy(values, bytes.data() + 8 + n, sizeof values);
  REQUIRE(values[0] == 0.5f);
  REQUIRE(values[1] == 1.f);
  REQUIRE(values[2] == -2.f);
  REQUIRE_THROWS_WITH(save_safetensors(dir / "bad.safetensors", {{"__metadata__", Tensor::scalar(1.f)}}),
                      Contains("cannot name a tensor"));
}

TEST_CASE("json: escaped strings, shortest exact numbers", "[export]") {
  REQUIRE(json_string("a\"b\\c\n\x01\xc4\xa0") == "\"a\\\"b\\\\c\\u000a\\u0001\xc4\xa0\"");
  REQUIRE(json_number(1e-5) == "1e-05");
  REQUIRE(json_number(10000) == "10000.0");
  REQUIRE(json_number(-3) == "-3.0");
  REQUIRE(json_number(0.1) == "0.1");
  REQUIRE_THROWS_WITH(json_number(std::nan("")), Contains("no JSON form"));
}

TEST_CASE("transformers class: the presets map, every other option says why not", "[export]") {
  REQUIRE(train::transformers_class(Config::from_string("")).architecture == "LlamaForCausalLM");
  REQUIRE(train::transformers_class(Config::from_string("model:\n  preset: gpt2\n")).architecture == "GPT2LMHeadModel");
  // Biases, tied embeddings, other widths and constants stay expressible; normalize is a no-op under softmax.
  REQUIRE(train::transformers_class(Config::from_string("", {"model.bias=true", "model.tie_embeddings=true",
                                                             "model.rope_theta=500", "attention.normalize=true"}))
              .architecture == "LlamaForCausalLM");
  train::HFClass c = train::transformers_class(
      Config::from_string("", {"attention.kernel=sigmoid", "attention.gate=headwise", "moe.experts=4"}));
  REQUIRE(c.architecture.empty());
  REQUIRE(c.why_not == "attention.kernel = sigmoid; attention.gate = headwise; moe.experts = 4 (mixture of experts) "
                       "(not in LlamaForCausalLM)");
  c = train::transformers_class(Config::from_string("", {"model.preset=gpt2", "model.pos=alibi"}));
  REQUIRE_THAT(c.why_not, Contains("model.pos = alibi") && Contains("neither LLaMA's"));
  for (const char* o : {"model.norm_placement=post", "attention.off_by_one=true", "attention.sink_logit=true",
                        "attention.kv_bias=true", "attention.sink_token=true", "attention.qk_norm=true",
                        "attention.mask=bidirectional", "model.ffn=geglu", "model.type=vit"})
    REQUIRE_FALSE(train::transformers_class(Config::from_string("", {o})).why_not.empty());
}

TEST_CASE("tokenizer.json: byte symbols as GPT-2's, duplicates refused", "[export]") {
  data::HFTokenizer bytes = data::hf_tokenizer_json(data::Tokenizer::byte_level());
  REQUIRE(bytes.why_not.empty());
  REQUIRE_THAT(bytes.json, Contains("\"\xc4\xa0\":32,") && Contains("\"A\":65,") && Contains("\"<|bos|>\":256}") &&
                               Contains("\"merges\":[]"));
  // "abc" twice: a + bc and ab + c.
  testing::TempDir dir("hf_tokenizer");
  const std::string path = dir.write("tok.txt",
                                     "sinklab-bpe 1\nvocab_size 261\nbos 260\nmerges 4\n"
                                     "97 98 ab\n256 99 abc\n98 99 bc\n97 258 abc\n");
  data::HFTokenizer dup = data::hf_tokenizer_json(data::Tokenizer::load(path));
  REQUIRE(dup.json.empty());
  REQUIRE(dup.why_not == "tokens 257 and 259 are the same bytes, and a tokenizers vocabulary gives each string one id");
}
