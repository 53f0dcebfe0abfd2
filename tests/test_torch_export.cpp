// Exports small models' parameters, outputs and gradients for the independent PyTorch
// cross-check (tests/python/test_torch_crosscheck.py). Hidden: runs only when asked for with
// "[.torch-export]" and SINKLAB_EXPORT_DIR set. Each case writes <dir>/<case>/tensors.h5
// (float32 datasets "tokens", "targets", "param/<name>", "grad/<name>", "logits", "loss") and
// <dir>/<case>/case.txt (key=value lines: the configuration the Python side rebuilds).
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>

#include "engine/checkpoint.h"
#include "engine/optim.h"
#include "engine/rng.h"
#include "models/decoder.h"

using namespace sl;
using namespace sl::models;

namespace {

// The float32 arrays of one case, written with sl::write_tensors_h5.
using Arrays = std::map<std::string, Tensor>;

Tensor from_ints(const Shape& shape, const std::vector<int32_t>& v) {
  return Tensor::from(shape, std::vector<float>(v.begin(), v.end()));
}

using Config = std::map<std::string, std::string>;

std::string str(bool b) { return b ? "1" : "0"; }
template <class T>
std::string str(const T& v) {
  std::ostringstream s;
  s << v;
  return s.str();
}

void describe(Config& k, const AttentionConfig& a) {
  k["kernel"] = a.kernel;
  k["normalize"] = str(a.normalize);
  k["sigmoid_bias"] = std::isnan(a.sigmoid_bias) ? "nan" : str(a.sigmoid_bias);
  k["off_by_one"] = str(a.off_by_one);
  k["sink_logit"] = str(a.sink_logit);
  k["kv_bias"] = str(a.kv_bias);
  k["kv_bias_key_learnable"] = str(a.kv_bias_key_learnable);
  k["kv_bias_value_learnable"] = str(a.kv_bias_value_learnable);
  k["kv_bias_per_head"] = str(a.kv_bias_per_head);
  k["value_bias"] = str(a.value_bias);
  k["gate"] = a.gate;
  k["qk_norm"] = str(a.qk_norm);
  k["mask"] = a.mask;
  k["prefix_len"] = str(a.prefix_len);
  k["window"] = str(a.window);
  k["mlp_hidden"] = str(a.mlp_hidden);
  k["rope_theta"] = str(a.rope_theta);
  k["relative_buckets"] = str(a.relative_buckets);
  k["relative_max_distance"] = str(a.relative_max_distance);
}

void describe(Config& k, const DecoderConfig& c) {
  k["model"] = "decoder";
  k["vocab_size"] = str(c.vocab_size);
  k["d_model"] = str(c.d_model);
  k["n_layers"] = str(c.n_layers);
  k["n_heads"] = str(c.n_heads);
  k["d_ff"] = str(c.d_ff);
  k["context"] = str(c.context);
  k["norm"] = c.norm;
  k["norm_placement"] = c.norm_placement;
  k["pos"] = c.pos;
  k["ffn"] = c.ffn;
  k["bias"] = str(c.bias);
  k["tie_embeddings"] = str(c.tie_embeddings);
  k["sink_token"] = str(c.sink_token);
  k["norm_eps"] = str(c.norm_eps);
  describe(k, c.attn);
}

void write_config(const std::string& path, const Config& k) {
  std::ofstream f(path);
  for (auto& [key, value] : k) f << key << "=" << value << "\n";
  REQUIRE(f.good());
}

// Zero- and one-initialised parameters (biases, gains, sink logits, relative tables, kv biases)
// get random offsets, so that their gradients and their effect on the forward are non-trivial.
void perturb(ParamStore& ps, Rng& rng) {
  for (auto& p : ps.params()) {
    if (p.init.kind != Init::Zeros && p.init.kind != Init::Ones) continue;
    float* d = p.value.data();
    float std = p.init.kind == Init::Zeros ? 0.3f : 0.2f;
    for (int64_t i = 0; i < p.value.numel(); ++i) d[i] += std * rng.normal();
  }
}

void set_param(ParamStore& ps, const std::string& name, const std::function<float(float)>& f) {
  const Param* p = ps.find(name);
  REQUIRE(p);
  Tensor v = p->value;
  for (int64_t i = 0; i < v.numel(); ++i) v.data()[i] = f(v.data()[i]);
}

void add_params(Arrays& out, const ParamStore& ps) {
  for (auto& p : ps.params()) {
    out["param/" + p.name] = p.value;
    out["grad/" + p.name] = p.value.grad();
  }
}

std::string export_dir() {
  const char* dir = std::getenv("SINKLAB_EXPORT_DIR");
  REQUIRE(dir != nullptr);
  return dir;
}

std::string case_dir(const std::string& dir, const std::string& name) {
  std::string path = dir + "/" + name;
  std::filesystem::create_directories(path);
  return path;
}

constexpr int64_t kB = 3, kT = 11;

DecoderConfig llama() {
  DecoderConfig c;
  c.vocab_size = 37;
  c.d_model = 24;
  c.n_layers = 2;
  c.n_heads = 2;
  c.d_ff = 35;
  c.context = 16;
  c.init_std = 0.2f;  // large enough that attention is far from uniform
  return c;
}

DecoderConfig gpt2() {
  DecoderConfig c = llama();
  c.norm = "layernorm";
  c.pos = "learned";
  c.ffn = "gelu";
  c.bias = true;
  c.tie_embeddings = true;
  return c;
}

// A case: the decoder configuration and an optional edit of the parameters after init.
struct DecoderCase {
  std::string name;
  DecoderConfig cfg;
  std::function<void(ParamStore&)> edit = nullptr;
};

std::vector<DecoderCase> decoder_cases() {
  std::vector<DecoderCase> cases;
  auto with = [&](const std::string& name, DecoderConfig base, const std::function<void(DecoderConfig&)>& f,
                  std::function<void(ParamStore&)> edit = nullptr) {
    f(base);
    cases.push_back({name, base, edit});
  };
  auto same = [](DecoderConfig&) {};
  with("llama", llama(), same);
  with("gpt2", gpt2(), same);
  with("post_norm", llama(), [](auto& c) { c.norm_placement = "post"; });
  with("post_norm_gpt2", gpt2(), [](auto& c) { c.norm_placement = "post"; });
  with("pos_sinusoidal", llama(), [](auto& c) { c.pos = "sinusoidal"; });
  with("pos_alibi", llama(), [](auto& c) { c.pos = "alibi"; });
  // Few buckets and a short max distance so that the log-spaced buckets are used at T = 11.
  auto relative = [](auto& c) {
    c.pos = "relative";
    c.attn.relative_buckets = 8;
    c.attn.relative_max_distance = 16;
  };
  with("pos_relative", llama(), relative);
  with("pos_relative_bidirectional", llama(), [&](auto& c) {
    relative(c);
    c.attn.relative_buckets = 12;
    c.attn.mask = "bidirectional";
  });
  with("pos_none", llama(), [](auto& c) { c.pos = "none"; });
  for (std::string f : {"geglu", "reglu", "relu", "silu"})
    with("ffn_" + f, llama(), [&](auto& c) { c.ffn = f; });
  with("kernel_sigmoid", llama(), [](auto& c) {
    c.attn.kernel = "sigmoid";
    c.attn.sigmoid_bias = std::nanf("");
  });
  with("kernel_sigmoid_normalized", llama(), [](auto& c) {
    c.attn.kernel = "sigmoid";
    c.attn.sigmoid_bias = std::nanf("");
    c.attn.normalize = true;
  });
  with("kernel_sigmoid_bias", llama(), [](auto& c) {
    c.attn.kernel = "sigmoid";
    c.attn.sigmoid_bias = -1.5f;
  });
  with("kernel_elu_plus_one", llama(), [](auto& c) { c.attn.kernel = "elu_plus_one"; });
  with("kernel_elu_plus_one_normalized", llama(), [](auto& c) {
    c.attn.kernel = "elu_plus_one";
    c.attn.normalize = true;
  });
  with("kernel_linear", llama(), [](auto& c) { c.attn.kernel = "linear"; });
  // Normalised linear attention divides by sum_j q.k_j, which can cross zero. Without RoPE and
  // with large equal q and k biases, q.k_j is dominated by |b|^2 > 0, far from zero.
  with(
      "kernel_linear_normalized", llama(),
      [](auto& c) {
        c.attn.kernel = "linear";
        c.attn.normalize = true;
        c.pos = "learned";
        c.bias = true;
      },
      [](ParamStore& ps) {
        for (int l = 0; l < 2; ++l)
          for (std::string b : {"bq", "bk"}) set_param(ps, "blocks." + str(l) + ".attn." + b, [](float v) { return 1.5f + v; });
      });
  with("kernel_mlp", llama(), [](auto& c) { c.attn.kernel = "mlp"; });
  // Normalised mlp kernel: a positive output bias keeps the row sums away from zero.
  with(
      "kernel_mlp_normalized", llama(),
      [](auto& c) {
        c.attn.kernel = "mlp";
        c.attn.normalize = true;
      },
      [](ParamStore& ps) {
        for (int l = 0; l < 2; ++l) set_param(ps, "blocks." + str(l) + ".attn.mlp_b2", [](float v) { return 2.f + v; });
      });
  with("kernel_relu", llama(), [](auto& c) { c.attn.kernel = "relu"; });
  with("softmax_off_by_one", llama(), [](auto& c) { c.attn.off_by_one = true; });
  with("sink_logit", llama(), [](auto& c) { c.attn.sink_logit = true; });
  with("sink_logit_gpt2", gpt2(), [](auto& c) { c.attn.sink_logit = true; });
  with("kv_bias", llama(), [](auto& c) { c.attn.kv_bias = true; });
  with("kv_bias_per_head", llama(), [](auto& c) {
    c.attn.kv_bias = true;
    c.attn.kv_bias_per_head = true;
  });
  with("value_bias", llama(), [](auto& c) { c.attn.value_bias = true; });
  with("kv_bias_value_zero", llama(), [](auto& c) {
    c.attn.kv_bias = true;
    c.attn.kv_bias_value_learnable = false;
  });
  with("kv_bias_alibi", llama(), [](auto& c) {
    c.attn.kv_bias = true;
    c.pos = "alibi";
  });
  with("kv_bias_relative_sigmoid", llama(), [&](auto& c) {
    c.attn.kv_bias = true;
    relative(c);
    c.attn.kernel = "sigmoid";
    c.attn.sigmoid_bias = std::nanf("");
  });
  with("sink_token", llama(), [](auto& c) { c.sink_token = true; });
  with("sink_token_gpt2", gpt2(), [](auto& c) { c.sink_token = true; });
  with("gate_elementwise", llama(), [](auto& c) { c.attn.gate = "elementwise"; });
  with("gate_headwise", llama(), [](auto& c) { c.attn.gate = "headwise"; });
  with("qk_norm", llama(), [](auto& c) { c.attn.qk_norm = true; });
  with("mask_prefix", llama(), [](auto& c) {
    c.attn.mask = "prefix";
    c.attn.prefix_len = 4;
  });
  with("mask_sliding", llama(), [](auto& c) {
    c.attn.mask = "sliding";
    c.attn.window = 3;
  });
  with("mask_bidirectional", llama(), [](auto& c) { c.attn.mask = "bidirectional"; });
  return cases;
}

void export_decoder(const std::string& dir, const DecoderCase& dc, uint64_t seed) {
  ParamStore ps;
  Decoder model(dc.cfg, ps);
  Rng rng(seed);
  ps.finalize(rng);
  perturb(ps, rng);
  if (dc.edit) dc.edit(ps);

  const int64_t V = dc.cfg.vocab_size;
  std::vector<int32_t> tokens(kB * kT), targets(kB * kT);
  for (auto& t : tokens) t = (int32_t)rng.uniform_int(V);
  for (auto& t : targets) t = (int32_t)rng.uniform_int(V);
  targets[4] = targets[kT + 7] = -1;  // exercise ignore_index

  Tensor logits = model.forward(tokens, kB, kT).logits;
  Tensor loss = cross_entropy(logits, targets);
  loss.backward();
  REQUIRE(std::isfinite(loss.item()));

  Arrays out{{"tokens", from_ints({kB, kT}, tokens)},
             {"targets", from_ints({kB * kT}, targets)},
             {"logits", logits.detach()},
             {"loss", loss.detach()}};
  add_params(out, ps);
  const std::string path = case_dir(dir, dc.name);
  write_tensors_h5(path + "/tensors.h5", out);
  Config k;
  describe(k, dc.cfg);
  k["B"] = str(kB);
  k["T"] = str(kT);
  write_config(path + "/case.txt", k);
}

// One pre-norm block (RMSNorm, softmax attention with RoPE, SwiGLU) on a random input x:
//   h = x + Attn(N1(x)),  out = h + FFN(N2(h)),  loss = sum(out * W).
void export_block(const std::string& dir) {
  const int64_t D = 24, H = 2, F = 35;
  AttentionConfig ac;
  ac.d_model = D;
  ac.n_heads = H;
  ac.init_std = ac.out_init_std = 0.2f;
  ParamStore ps;
  Norm n1("rmsnorm", D, 1e-5f, ps, "block.norm1"), n2("rmsnorm", D, 1e-5f, ps, "block.norm2");
  Attention attn(ac, ps, "block.attn");
  FFN ffn(FFNConfig{D, F, "swiglu", false, 0.2f, 0.2f}, ps, "block.ffn");
  Rng rng(7);
  ps.finalize(rng);
  perturb(ps, rng);

  auto random = [&](const Shape& s) {
    Tensor t = Tensor::empty(s);
    for (int64_t i = 0; i < t.numel(); ++i) t.data()[i] = rng.normal();
    return t;
  };
  Tensor x = random({kB, kT, D}).set_requires_grad();
  Tensor W = random({kB, kT, D});
  Tensor h = add(x, attn.forward(n1.forward(x)).y);
  Tensor out = add(h, ffn.forward(n2.forward(h)));
  Tensor loss = sum(mul(out, W));
  loss.backward();
  REQUIRE(std::isfinite(loss.item()));

  Arrays arrays{{"x", x.detach()}, {"grad/x", x.grad()}, {"weights", W}, {"out", out.detach()}, {"loss", loss.detach()}};
  add_params(arrays, ps);
  const std::string path = case_dir(dir, "block");
  write_tensors_h5(path + "/tensors.h5", arrays);
  Config k;
  describe(k, ac);
  k["model"] = "block";
  k["d_model"] = str(D);
  k["n_heads"] = str(H);
  k["d_ff"] = str(F);
  k["norm"] = "rmsnorm";
  k["norm_eps"] = str(1e-5f);
  k["ffn"] = "swiglu";
  k["pos"] = ac.pos;
  k["bias"] = str(ac.bias);
  k["B"] = str(kB);
  k["T"] = str(kT);
  write_config(path + "/case.txt", k);
}

// 20 AdamW steps (decay on the parameters declared with weight_decay, gradients clipped to
// norm 1) on fixed random batches. Exports the initial parameters, the batches, every step's
// loss and pre-clipping gradient norm, and the final parameters.
void export_adamw(const std::string& dir, const std::string& name, const DecoderConfig& cfg, uint64_t seed) {
  const int64_t steps = 20;
  const float lr = 1e-2f, max_norm = 1.f;
  const AdamWConfig ac{0.9f, 0.95f, 1e-8f, 0.1f};
  ParamStore ps;
  Decoder model(cfg, ps);
  Rng rng(seed);
  ps.finalize(rng);
  Arrays out;
  for (auto& p : ps.params()) out["param/" + p.name] = p.value.clone();

  AdamW opt(ps, ac);
  std::vector<int32_t> tokens(steps * kB * kT), targets(steps * kB * kT);
  for (auto& t : tokens) t = (int32_t)rng.uniform_int(cfg.vocab_size);
  for (auto& t : targets) t = (int32_t)rng.uniform_int(cfg.vocab_size);
  std::vector<float> losses, norms;
  for (int64_t s = 0; s < steps; ++s) {
    const int64_t n = kB * kT;
    ps.zero_grad();
    Tensor loss = cross_entropy(model.forward({tokens.begin() + s * n, tokens.begin() + (s + 1) * n}, kB, kT).logits,
                                {targets.begin() + s * n, targets.begin() + (s + 1) * n});
    loss.backward();
    losses.push_back(loss.item());
    norms.push_back(clip_grad_norm(ps, max_norm));
    opt.step(lr);
  }
  REQUIRE(std::isfinite(losses.back()));
  out["tokens"] = from_ints({steps, kB, kT}, tokens);
  out["targets"] = from_ints({steps, kB * kT}, targets);
  out["losses"] = Tensor::from({steps}, losses);
  out["grad_norms"] = Tensor::from({steps}, norms);
  for (auto& p : ps.params()) out["final/" + p.name] = p.value;
  const std::string path = case_dir(dir, name);
  write_tensors_h5(path + "/tensors.h5", out);

  Config k;
  describe(k, cfg);
  k["model"] = "adamw";
  k["B"] = str(kB);
  k["T"] = str(kT);
  k["steps"] = str(steps);
  k["lr"] = str(lr);
  k["max_norm"] = str(max_norm);
  k["beta1"] = str(ac.beta1);
  k["beta2"] = str(ac.beta2);
  k["eps"] = str(ac.eps);
  k["weight_decay"] = str(ac.weight_decay);
  std::string decayed;
  for (auto& p : ps.params())
    if (p.weight_decay) decayed += (decayed.empty() ? "" : ",") + p.name;
  k["decayed"] = decayed;
  write_config(path + "/case.txt", k);
}

}  // namespace

TEST_CASE("export AdamW training runs for the PyTorch cross-check", "[.torch-export]") {
  const std::string dir = export_dir();
  export_adamw(dir, "adamw20_llama", llama(), 11);
  export_adamw(dir, "adamw20_gpt2", gpt2(), 12);
}

TEST_CASE("export a pre-norm block for the PyTorch cross-check", "[.torch-export]") { export_block(export_dir()); }

TEST_CASE("export decoder variants for the PyTorch cross-check", "[.torch-export]") {
  const std::string dir = export_dir();
  uint64_t seed = 100;
  for (auto& c : decoder_cases()) export_decoder(dir, c, seed++);
}
