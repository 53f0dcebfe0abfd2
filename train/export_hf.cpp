#include "train/export_hf.h"

#include <filesystem>

#include "data/hf_tokenizer.h"
#include "data/manifest.h"
#include "engine/json.h"
#include "engine/ops.h"
#include "train/model_builder.h"

namespace sl::train {

namespace {

const char* const kLlama = "LlamaForCausalLM";
const char* const kGPT2 = "GPT2LMHeadModel";

// RoPE turns the pair (x[2i], x[2i+1]) of a head here and (x[i], x[i + d_h/2]) in transformers'
// Llama (rotate_half), both by the angle of frequency i. Moving rows 2i and 2i+1 of each head of
// W_q and W_k (and their biases) to rows i and i + d_h/2 makes the same rotation of the same
// numbers; q.k, a sum over all rows, does not change.
Tensor rope_pairs_to_halves(const Tensor& w_in, int64_t heads) {
  Tensor w = w_in.contiguous(), out = Tensor::empty(w.shape());
  const int64_t D = w.size(0), dh = D / heads, row = w.numel() / D;
  for (int64_t h = 0; h < heads; ++h)
    for (int64_t i = 0; i < dh / 2; ++i)
      for (int64_t half = 0; half < 2; ++half)
        std::copy_n(w.data() + (h * dh + 2 * i + half) * row, row, out.data() + (h * dh + half * dh / 2 + i) * row);
  return out;
}

// transformers' GPT-2 uses Conv1D, y = x W + b with W [in, out]: our [out, in] transposed.
Tensor conv1d(const Tensor& w) { return w.transpose(0, 1).contiguous(); }

std::string join(const std::vector<std::string>& parts, const std::string& sep) {
  std::string out;
  for (auto& p : parts) out += (out.empty() ? "" : sep) + p;
  return out;
}

}  // namespace

HFClass transformers_class(const Config& c) {
  if (c.s("model.type") != "decoder")
    return {"", "model.type = " + c.s("model.type") + ": only decoder language models map onto a transformers class"};
  const std::string norm = c.s("model.norm"), pos = c.s("model.pos"), ffn = c.s("model.ffn");
  std::string arch = norm == "rmsnorm" && pos == "rope" && ffn == "swiglu"      ? kLlama
                     : norm == "layernorm" && pos == "learned" && ffn == "gelu" ? kGPT2
                                                                                : "";
  std::vector<std::string> why;
  if (arch.empty())
    why.push_back("model.norm = " + norm + ", model.pos = " + pos + ", model.ffn = " + ffn +
                  " are neither LLaMA's (rmsnorm, rope, swiglu) nor GPT-2's (layernorm, learned, gelu)");
  auto need = [&](bool ok, const std::string& what) {
    if (!ok) why.push_back(what);
  };
  // attention.normalize is not checked: softmax weights already sum to one, and it is a no-op there.
  need(c.s("model.norm_placement") == "pre", "model.norm_placement = " + c.s("model.norm_placement"));
  need(c.s("attention.kernel") == "softmax", "attention.kernel = " + c.s("attention.kernel"));
  need(!c.b("attention.off_by_one"), "attention.off_by_one = true");
  need(!c.b("attention.sink_logit"), "attention.sink_logit = true");
  need(!c.b("attention.kv_bias"), "attention.kv_bias = true");
  need(!c.b("attention.value_bias"), "attention.value_bias = true");
  need(!c.b("attention.sink_token"), "attention.sink_token = true");
  need(c.s("attention.gate") == "none", "attention.gate = " + c.s("attention.gate"));
  need(!c.b("attention.qk_norm"), "attention.qk_norm = true");
  need(c.s("attention.mask") == "causal", "attention.mask = " + c.s("attention.mask"));
  need(c.i("moe.experts") == 0, "moe.experts = " + std::to_string(c.i("moe.experts")) + " (mixture of experts)");
  if (why.empty()) return {arch, ""};
  return {"", join(why, "; ") + (arch.empty() ? "" : " (not in " + arch + ")")};
}

models::DecoderConfig checkpoint_decoder_config(const Config& cfg, const Checkpoint& ck) {
  auto wte = ck.tensors.find("param/wte");
  SL_CHECK(wte != ck.tensors.end() && wte->second.dim() == 2, "the checkpoint has no token embedding param/wte");
  return decoder_config(cfg, wte->second.size(0));
}

std::map<std::string, Tensor> export_tensors(const Config& cfg, const HFClass& cls, const Checkpoint& ck) {
  std::map<std::string, Tensor> out;
  if (cls.architecture.empty()) {
    for (auto& [name, t] : ck.tensors)
      if (name.rfind("param/", 0) == 0) out[name.substr(6)] = t;
    return out;
  }
  const models::DecoderConfig d = checkpoint_decoder_config(cfg, ck);
  const int64_t V = d.vocab_size, D = d.d_model, F = d.d_ff;
  auto p = [&](const std::string& name, const Shape& shape) { return ck.tensor("param/" + name, shape); };
  auto bias = [&](const std::string& name, int64_t n) { return d.bias ? p(name, {n}) : Tensor::zeros({n}); };

  if (cls.architecture == kLlama) {
    out["model.embed_tokens.weight"] = p("wte", {V, D});
    for (int64_t l = 0; l < d.n_layers; ++l) {
      const std::string s = "blocks." + std::to_string(l) + ".", t = "model.layers." + std::to_string(l) + ".";
      out[t + "input_layernorm.weight"] = p(s + "norm1.weight", {D});
      out[t + "post_attention_layernorm.weight"] = p(s + "norm2.weight", {D});
      out[t + "self_attn.q_proj.weight"] = rope_pairs_to_halves(p(s + "attn.wq", {D, D}), d.n_heads);
      out[t + "self_attn.k_proj.weight"] = rope_pairs_to_halves(p(s + "attn.wk", {D, D}), d.n_heads);
      out[t + "self_attn.v_proj.weight"] = p(s + "attn.wv", {D, D});
      out[t + "self_attn.o_proj.weight"] = p(s + "attn.wo", {D, D});
      out[t + "mlp.gate_proj.weight"] = p(s + "ffn.w1", {F, D});  // silu(W1 x) * (W3 x)
      out[t + "mlp.up_proj.weight"] = p(s + "ffn.w3", {F, D});
      out[t + "mlp.down_proj.weight"] = p(s + "ffn.w2", {D, F});
      if (d.bias) {
        out[t + "self_attn.q_proj.bias"] = rope_pairs_to_halves(p(s + "attn.bq", {D}), d.n_heads);
        out[t + "self_attn.k_proj.bias"] = rope_pairs_to_halves(p(s + "attn.bk", {D}), d.n_heads);
        out[t + "self_attn.v_proj.bias"] = p(s + "attn.bv", {D});
        out[t + "self_attn.o_proj.bias"] = p(s + "attn.bo", {D});
        out[t + "mlp.gate_proj.bias"] = p(s + "ffn.b1", {F});
        out[t + "mlp.up_proj.bias"] = p(s + "ffn.b3", {F});
        out[t + "mlp.down_proj.bias"] = p(s + "ffn.b2", {D});
      }
    }
    out["model.norm.weight"] = p("final_norm.weight", {D});
  } else {
    // GPT-2 has biases everywhere; a model without them is the same model with zero biases.
    out["transformer.wte.weight"] = p("wte", {V, D});
    out["transformer.wpe.weight"] = p("wpe", {d.context, D});
    for (int64_t l = 0; l < d.n_layers; ++l) {
      const std::string s = "blocks." + std::to_string(l) + ".", t = "transformer.h." + std::to_string(l) + ".";
      out[t + "ln_1.weight"] = p(s + "norm1.weight", {D});
      out[t + "ln_1.bias"] = p(s + "norm1.bias", {D});
      out[t + "ln_2.weight"] = p(s + "norm2.weight", {D});
      out[t + "ln_2.bias"] = p(s + "norm2.bias", {D});
      // c_attn computes q, k, v at once: their Conv1D weights side by side.
      out[t + "attn.c_attn.weight"] =
          concat({conv1d(p(s + "attn.wq", {D, D})), conv1d(p(s + "attn.wk", {D, D})), conv1d(p(s + "attn.wv", {D, D}))}, 1);
      out[t + "attn.c_attn.bias"] = concat({bias(s + "attn.bq", D), bias(s + "attn.bk", D), bias(s + "attn.bv", D)}, 0);
      out[t + "attn.c_proj.weight"] = conv1d(p(s + "attn.wo", {D, D}));
      out[t + "attn.c_proj.bias"] = bias(s + "attn.bo", D);
      out[t + "mlp.c_fc.weight"] = conv1d(p(s + "ffn.w1", {F, D}));
      out[t + "mlp.c_fc.bias"] = bias(s + "ffn.b1", F);
      out[t + "mlp.c_proj.weight"] = conv1d(p(s + "ffn.w2", {D, F}));
      out[t + "mlp.c_proj.bias"] = bias(s + "ffn.b2", D);
    }
    out["transformer.ln_f.weight"] = p("final_norm.weight", {D});
    out["transformer.ln_f.bias"] = p("final_norm.bias", {D});
  }
  if (!d.tie_embeddings) out["lm_head.weight"] = p("lm_head", {V, D});
  return out;
}

std::string hf_config_json(const Config& cfg, const HFClass& cls, const Checkpoint& ck, std::optional<int32_t> bos) {
  const models::DecoderConfig d = checkpoint_decoder_config(cfg, ck);
  auto i = [](int64_t v) { return std::to_string(v); };
  auto b = [](bool v) { return std::string(v ? "true" : "false"); };
  const std::string token = bos ? i(*bos) : "null";
  std::vector<std::pair<std::string, std::string>> keys = {{"architectures", "[" + json_string(cls.architecture) + "]"}};
  if (cls.architecture == kLlama) {
    keys.insert(keys.end(), {{"model_type", "\"llama\""},
                             {"vocab_size", i(d.vocab_size)},
                             {"hidden_size", i(d.d_model)},
                             {"intermediate_size", i(d.d_ff)},
                             {"num_hidden_layers", i(d.n_layers)},
                             {"num_attention_heads", i(d.n_heads)},
                             {"num_key_value_heads", i(d.n_heads)},
                             {"head_dim", i(d.d_model / d.n_heads)},
                             {"hidden_act", "\"silu\""},
                             {"max_position_embeddings", i(d.context)},
                             {"rms_norm_eps", json_number(cfg.f("model.norm_eps"))},
                             {"rope_theta", json_number(cfg.f("model.rope_theta"))},
                             {"rope_scaling", "null"},
                             {"attention_bias", b(d.bias)},
                             {"mlp_bias", b(d.bias)},
                             {"attention_dropout", "0.0"},
                             {"pretraining_tp", "1"}});
  } else {
    keys.insert(keys.end(), {{"model_type", "\"gpt2\""},
                             {"vocab_size", i(d.vocab_size)},
                             {"n_embd", i(d.d_model)},
                             {"n_layer", i(d.n_layers)},
                             {"n_head", i(d.n_heads)},
                             {"n_inner", i(d.d_ff)},
                             {"n_positions", i(d.context)},
                             {"n_ctx", i(d.context)},
                             {"activation_function", "\"gelu\""},  // the exact (erf) GELU, as ours
                             {"layer_norm_epsilon", json_number(cfg.f("model.norm_eps"))},
                             {"scale_attn_weights", "true"},
                             {"scale_attn_by_inverse_layer_idx", "false"},
                             {"reorder_and_upcast_attn", "false"},
                             {"resid_pdrop", "0.0"},
                             {"embd_pdrop", "0.0"},
                             {"attn_pdrop", "0.0"}});
  }
  keys.insert(keys.end(), {{"tie_word_embeddings", b(d.tie_embeddings)},
                           {"bos_token_id", token},
                           {"eos_token_id", token},
                           {"initializer_range", json_number(cfg.f("model.init_std"))},
                           {"use_cache", "true"},
                           {"torch_dtype", "\"float32\""},
                           // The 4.x layout these keys follow (5.x reads it too); without a version,
                           // 5.x's AutoTokenizer warns of a Mistral regex problem this tokenizer lacks.
                           {"transformers_version", "\"4.46.0\""}});
  std::string out = "{\n";
  for (size_t n = 0; n < keys.size(); ++n)
    out += "  " + json_string(keys[n].first) + ": " + keys[n].second + (n + 1 < keys.size() ? ",\n" : "\n");
  return out + "}\n";
}

std::string hf_tokenizer_config_json(const Config& cfg) {
  const std::string bos = json_string(data::kBosText);
  return "{\n  \"tokenizer_class\": \"PreTrainedTokenizerFast\",\n  \"bos_token\": " + bos + ",\n  \"eos_token\": " + bos +
         ",\n  \"model_max_length\": " + std::to_string(cfg.i("model.context")) +
         ",\n  \"clean_up_tokenization_spaces\": false\n}\n";
}

std::string sinklab_config_json(const Config& cfg, const HFClass& cls, const Checkpoint& ck) {
  auto value = [&](const KeySpec& k) -> std::string {
    auto list = [](const auto& v, auto fmt) {
      std::string s;
      for (auto& x : v) s += (s.empty() ? "" : ", ") + fmt(x);
      return "[" + s + "]";
    };
    switch (k.type()) {
      case Type::Int: return std::to_string(cfg.i(k.key));
      case Type::Float: return cfg.is_auto(k.key) ? "\"auto\"" : json_number(cfg.f(k.key));
      case Type::Bool: return cfg.b(k.key) ? "true" : "false";
      case Type::String: return json_string(cfg.s(k.key));
      case Type::FloatList: return list(cfg.fl(k.key), json_number);
      case Type::IntList: return list(cfg.il(k.key), [](int64_t v) { return std::to_string(v); });
    }
    return "null";
  };
  std::string config;
  for (const std::string& section : sections()) {
    std::string keys;
    for (const KeySpec& k : schema())
      if (k.section() == section)
        keys += std::string(keys.empty() ? "" : ",\n") + "      " + json_string(k.key.substr(section.size() + 1)) + ": " + value(k);
    config += std::string(config.empty() ? "" : ",\n") + "    " + json_string(section) + ": {\n" + keys + "\n    }";
  }
  std::string resolved;
  if (cfg.s("model.type") == "decoder") {
    const models::DecoderConfig d = checkpoint_decoder_config(cfg, ck);
    resolved = ",\n  \"resolved\": {\"model.vocab_size\": " + std::to_string(d.vocab_size) +
               ", \"model.d_ff\": " + std::to_string(d.d_ff) +
               ", \"attention.sigmoid_bias\": " + json_number(d.attn.sigmoid_bias) + "}";
  }
  return "{\n  \"format\": \"sinklab-export-1\",\n  \"step\": " + std::to_string(ck.integers("step").at(0)) +
         ",\n  \"tensor_names\": " + (cls.architecture.empty() ? "\"sinklab\"" : "\"transformers\"") +
         ",\n  \"transformers_class\": " + (cls.architecture.empty() ? "null" : json_string(cls.architecture)) +
         ",\n  \"no_transformers_class_because\": " + (cls.architecture.empty() ? json_string(cls.why_not) : "null") +
         ",\n  \"layout\": " +
         json_string(cls.architecture.empty()
                         ? "sinklab's: linear weights [out, in] (y = x W^T + b); RoPE rotates the pairs (x[2i], x[2i+1]) "
                           "of each head; fixed tables (sinusoidal positions, ALiBi slopes) are not stored"
                         : "transformers' " + cls.architecture) +
         resolved + ",\n  \"config\": {\n" + config + "\n  }\n}\n";
}

RunTokenizer run_tokenizer(const Config& cfg, int64_t model_vocab) {
  const std::string source = cfg.s("data.source");
  if (cfg.s("model.type") != "decoder" || (source != "corpus" && source != "markov"))
    return {std::nullopt, "", "data.source = " + source + " has no text tokenizer"};
  const std::string dir = cfg.s("data.dir"), manifest = dir + "/manifest.txt";
  if (!std::filesystem::exists(manifest))
    return {std::nullopt, "", "the run's data.dir '" + dir + "' has no prepared corpus (manifest.txt) to take it from"};
  RunTokenizer r;
  try {
    r.path = dir + "/" + data::read_manifest(manifest).tokenizer;
    r.tokenizer = data::Tokenizer::load(r.path);
  } catch (const Error& e) {
    return {std::nullopt, r.path, e.what()};
  }
  if (r.tokenizer->vocab_size() > model_vocab)
    return {std::nullopt, r.path, r.path + " has " + std::to_string(r.tokenizer->vocab_size()) +
                                      " tokens, more than the model's " + std::to_string(model_vocab) +
                                      ": data.dir was prepared again since the run"};
  return r;
}

}  // namespace sl::train
