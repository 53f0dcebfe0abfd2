// A checkpoint for the PyTorch ecosystem (sinklab export): the tensors, named and laid out as
// transformers' LlamaForCausalLM or GPT2LMHeadModel where the model is one of them, with their
// config.json; the tokenizer as tokenizer.json; and sinklab_config.json, the full resolved config.
//
// A model that transformers cannot express keeps sinklab's parameter names ("wte",
// "blocks.0.attn.wq", "blocks.0.attn.k_bias", ...): linear weights are [out, in] (y = x W^T + b),
// RoPE rotates the pairs (x[2i], x[2i+1]) of each head, and fixed tables (sinusoidal positions,
// ALiBi slopes) are not stored, they follow from the config.
#pragma once
#include <map>
#include <optional>
#include <string>

#include "data/tokenizer.h"
#include "engine/checkpoint.h"
#include "models/decoder.h"
#include "train/config.h"

namespace sl::train {

// The transformers class of the model `cfg` describes, or why there is none.
struct HFClass {
  std::string architecture;  // "LlamaForCausalLM", "GPT2LMHeadModel", or "" (then why_not says why)
  std::string why_not;
};
HFClass transformers_class(const Config& cfg);

// The decoder shape of a checkpoint's config (vocabulary from its embedding).
models::DecoderConfig checkpoint_decoder_config(const Config& cfg, const Checkpoint& ck);

// model.safetensors: transformers' names for a class, sinklab's otherwise.
std::map<std::string, Tensor> export_tensors(const Config& cfg, const HFClass& cls, const Checkpoint& ck);

// config.json of the class (cls.architecture not empty); bos is BOS and EOS (a document ends
// where the next one's BOS comes), null without a tokenizer.
std::string hf_config_json(const Config& cfg, const HFClass& cls, const Checkpoint& ck, std::optional<int32_t> bos);

// tokenizer_config.json, for transformers' AutoTokenizer: a PreTrainedTokenizerFast of
// tokenizer.json with BOS (and EOS) data::kBosText, and no clean-up of spaces when decoding.
std::string hf_tokenizer_config_json(const Config& cfg);

// sinklab_config.json: the format, the step, which names the tensors have, the class or why
// none, every config key by section, and the values `auto` and 0 resolve to.
std::string sinklab_config_json(const Config& cfg, const HFClass& cls, const Checkpoint& ck);

// The tokenizer the run's tokens come from (the one in data.dir for corpus and markov sources),
// or why there is none to export.
struct RunTokenizer {
  std::optional<data::Tokenizer> tokenizer;
  std::string path;     // its file
  std::string why_not;
};
RunTokenizer run_tokenizer(const Config& cfg, int64_t model_vocab);

}  // namespace sl::train
