#include "train/schema.h"

#include <cmath>

#include "engine/attention_kernels.h"
#include "engine/error.h"
#include "train/config.h"
#include "train/distributed.h"

namespace sl {

namespace {

constexpr double kBig = 1e12;  // upper bound for step and token counts: absurd, not overflowing
constexpr double kSeedMax = 9007199254740992.0;  // 2^53: every bound stays exact as a double

std::string num(int64_t v) { return std::to_string(v); }

KeySpec I(std::string key, int64_t def, double lo, double hi, std::string doc) {
  return {std::move(key), def, lo, hi, {}, false, std::move(doc)};
}
KeySpec F(std::string key, double def, double lo, double hi, std::string doc) {
  return {std::move(key), def, lo, hi, {}, false, std::move(doc)};
}
KeySpec F_auto(std::string key, double lo, double hi, std::string doc) {
  return {std::move(key), std::nan(""), lo, hi, {}, true, std::move(doc)};
}
KeySpec B(std::string key, bool def, std::string doc) {
  return {std::move(key), def, {}, {}, {}, false, std::move(doc)};
}
KeySpec S(std::string key, std::vector<std::string> choices, std::string doc) {  // default: first choice
  std::string def = choices.front();
  return {std::move(key), std::move(def), {}, {}, std::move(choices), false, std::move(doc)};
}
KeySpec Text(std::string key, std::string def, std::string doc) {
  return {std::move(key), std::move(def), {}, {}, {}, false, std::move(doc)};
}
KeySpec FL(std::string key, std::vector<double> def, double lo, double hi, std::string doc) {
  return {std::move(key), std::move(def), lo, hi, {}, false, std::move(doc)};
}
KeySpec IL(std::string key, std::vector<int64_t> def, double lo, double hi, std::string doc) {
  return {std::move(key), std::move(def), lo, hi, {}, false, std::move(doc)};
}

std::vector<KeySpec> build_schema() {
  return {
      S("model.type", {"decoder", "vit"}, "decoder language model or vision transformer"),
      S("model.preset", {"llama", "gpt2", "none"}, "sets norm, pos, ffn, bias, tie_embeddings before explicit keys"),
      I("model.d_model", 256, 1, 65536, "residual stream width"),
      I("model.n_layers", 4, 1, 1024, "transformer blocks"),
      I("model.n_heads", 4, 1, 1024, "attention heads; must divide d_model"),
      I("model.d_ff", 0, 0, 1 << 20, "FFN hidden width; 0 = auto (8/3*d rounded up to 8 for gated FFNs, else 4*d)"),
      I("model.context", 256, 1, 1 << 20, "sequence length in tokens"),
      I("model.vocab_size", 0, 0, 1 << 24, "0 = from the data (tokenizer, or data.vocab for synthetic sources)"),
      S("model.norm", {"rmsnorm", "layernorm"}, "normalisation layer"),
      S("model.norm_placement", {"pre", "post"}, "norm before the sublayer (pre) or after the residual add (post)"),
      F("model.norm_eps", 1e-5, 0, 1, "epsilon inside the norm"),
      S("model.pos", {"rope", "learned", "sinusoidal", "alibi", "relative", "none"}, "positional encoding"),
      F("model.rope_theta", 10000, 1, 1e9, "RoPE base frequency"),
      I("model.relative_buckets", 32, 1, 4096, "T5 relative-position buckets"),
      I("model.relative_max_distance", 128, 1, 1 << 20, "T5 relative-position max distance"),
      S("model.ffn", {"swiglu", "geglu", "reglu", "gelu", "relu", "silu"}, "feed-forward activation"),
      B("model.bias", false, "biases in linear layers"),
      B("model.tie_embeddings", false, "share the input embedding with the output head"),
      F("model.init_std", 0.02, 0, 10, "std of the normal weight init"),

      S("attention.kernel", attention_kernel_names(), "similarity kernel replacing exp(q.k)"),
      B("attention.normalize", false, "divide non-softmax kernels by their row sum"),
      F_auto("attention.sigmoid_bias", -100, 100, "bias added to sigmoid logits; auto = -log(context)"),
      B("attention.off_by_one", false, "softmax with +1 in the denominator"),
      B("attention.sink_logit", false, "learnable per-head logit that absorbs attention"),
      B("attention.kv_bias", false, "learnable extra key/value slot"),
      S("attention.kv_bias_key", {"learnable", "zero"}, "the extra key"),
      S("attention.kv_bias_value", {"learnable", "zero"}, "the extra value"),
      B("attention.kv_bias_per_head", false, "one extra key/value (or value bias) per head instead of shared"),
      B("attention.value_bias", false, "learnable bias added to each head's output, no key slot (Gu et al.'s value bias)"),
      B("attention.sink_token", false, "prepend a learnable sink token"),
      S("attention.gate", {"none", "elementwise", "headwise"}, "sigmoid output gate after attention"),
      B("attention.qk_norm", false, "normalise queries and keys per head"),
      S("attention.mask", {"causal", "prefix", "sliding", "bidirectional"}, "attention mask"),
      I("attention.prefix_len", 0, 0, 1 << 20, "bidirectional prefix length for mask = prefix"),
      I("attention.window", 0, 0, 1 << 20, "window size for mask = sliding"),
      I("attention.mlp_hidden", 16, 1, 4096, "hidden width of the mlp kernel"),

      I("moe.experts", 0, 0, 1024, "0 = dense FFN"),
      I("moe.top_k", 2, 1, 1024, "experts per token"),
      I("moe.every", 1, 1, 1024, "MoE FFN in every n-th block"),
      S("moe.router", {"softmax", "sigmoid"}, "router scores"),
      I("moe.shared_experts", 0, 0, 64, "always-active experts"),
      B("moe.renormalize", true, "divide the top-k gates by their sum (top_k = 1 then trains the router only via the aux losses)"),
      F("moe.capacity_factor", 0, 0, 100, "0 = no token dropping"),
      F("moe.aux_loss", 0.01, 0, 100, "load-balancing loss weight"),
      F("moe.z_loss", 0.001, 0, 100, "router z-loss weight"),
      I("moe.d_ff", 0, 0, 1 << 20, "expert hidden width; 0 = model.d_ff"),

      I("vit.image_size", 28, 1, 4096, "square image side in pixels"),
      I("vit.patch", 4, 1, 4096, "patch side; must divide image_size"),
      I("vit.channels", 1, 1, 64, "image channels"),
      I("vit.classes", 10, 1, 1 << 20, "output classes"),
      I("vit.registers", 0, 0, 1024, "register tokens (Darcet et al.)"),
      S("vit.pos", {"learned", "sinusoidal"}, "patch position embedding"),
      S("vit.pool", {"cls", "mean"}, "classifier input"),
      B("vit.augment", false, "random crop augmentation"),
      B("vit.flip", false, "random horizontal flips (with vit.augment)"),
      B("vit.normalize", true, "standardise pixels with the training set's mean and std"),

      S("data.source", {"corpus", "random", "repeat", "markov", "backcopy", "fashion_mnist", "synthetic_images"},
        "where tokens or images come from"),
      Text("data.dir", "data/cache/default", "prepared corpus / dataset directory"),
      S("data.tokenizer", {"bpe", "byte"}, "tokenizer"),
      I("data.vocab", 4096, 1, 1 << 24, "tokenizer vocabulary size (synthetic sources: token range)"),
      S("data.windows", {"random", "doc_aligned"}, "where training windows start"),
      S("data.first_token", {"any", "bos", "fixed"}, "what the first token of each window is"),
      I("data.fixed_token", 0, 0, 1 << 24, "the token for first_token = fixed"),
      I("data.train_tokens", 0, 0, kBig, "0 = all"),
      I("data.seed", 1234, 0, kSeedMax, "data order and synthetic data seed"),
      I("data.repeat_period", 16, 1, 1 << 20, "period of the repeat source"),
      I("data.markov_order", 2, 0, 16, "order of the markov source"),
      I("data.backcopy_triggers", 3, 1, 1024, "trigger tokens of the backcopy source"),
      Text("data.backcopy_text", "", "text for the backcopy source; empty = Brown corpus"),
      I("data.augment_crop", 2, 0, 64, "max crop shift in pixels when vit.augment"),

      I("train.steps", 1000, 0, kBig, "optimiser steps"),
      I("train.batch_size", 16, 1, 1 << 20, "sequences per step"),
      I("train.micro_batch", 0, 0, 1 << 20, "sequences per forward pass; 0 = no accumulation"),
      F("train.lr", 3e-4, 0, 10, "peak learning rate"),
      F("train.min_lr_ratio", 0.1, 0, 1, "final lr as a fraction of the peak"),
      I("train.warmup", 100, 0, kBig, "linear warmup steps"),
      S("train.schedule", {"cosine", "linear", "constant"}, "lr decay after warmup"),
      S("train.optimizer", {"adamw", "sgd"}, "optimiser"),
      F("train.beta1", 0.9, 0, 1, "AdamW beta1"),
      F("train.beta2", 0.95, 0, 1, "AdamW beta2"),
      F("train.eps", 1e-8, 0, 1, "AdamW epsilon"),
      F("train.weight_decay", 0.1, 0, 10, "decoupled weight decay"),
      F("train.momentum", 0.9, 0, 1, "SGD momentum"),
      F("train.grad_clip", 1.0, 0, 1e6, "global grad-norm clip; 0 = off"),
      S("train.loss", {"lm", "prefix_lm"}, "next-token loss on all positions or after the prefix"),
      F("train.z_loss", 0, 0, 100, "weight of log(Z)^2 on the output logits"),
      B("train.decay_norms", false, "weight decay on norm gains"),
      B("train.decay_biases", false, "weight decay on biases"),
      B("train.decay_embeddings", true, "weight decay on embeddings"),
      I("train.eval_every", 100, 0, kBig, "steps between evaluations; 0 = off"),
      I("train.eval_batches", 8, 0, 1 << 20, "batches per evaluation"),
      I("train.log_every", 10, 0, kBig, "steps between log lines; 0 = off"),
      I("train.checkpoint_every", 500, 0, kBig, "steps between checkpoints; 0 = off"),
      B("train.checkpoint_log_spaced", true, "also checkpoint at steps 1, 2, 4, 8, ..."),
      I("train.seed", 0, 0, kSeedMax, "parameter init seed"),
      I("train.threads", 0, 0, 4096, "0 = OMP_NUM_THREADS"),
      B("train.pin_threads", false, "bind thread i to CPU i, and an mpirun job's processes to CPUs of their own (a machine to itself only, not a sweep's runs)"),
      I("train.allreduce_bucket_kb", 1024, 1, 1 << 21,
        "under mpirun: gradients are summed across processes in buckets of at least this many KiB, each sent "
        "while the backward still runs, as soon as its gradients are final"),
      S("train.dtype", {"f32", "bf16"}, "matmul operands; bf16 keeps fp32 accumulation and master weights"),
      S("train.on_nan", {"stop", "rollback"}, "on a non-finite loss: stop, or reload the last checkpoint"),
      F("train.rollback_lr_factor", 0.5, 0, 1, "lr multiplier after a rollback"),

      I("stats.every", 1, 0, kBig, "steps between sink statistics; 0 = off"),
      I("stats.probe_batch", 8, 1, 4096, "sequences in the fixed probe batch"),
      I("stats.probe_len", 64, 1, 1 << 20, "probe sequence length; at most model.context"),
      I("stats.first_k", 8, 0, 4096, "leading positions whose attention is tracked"),
      F("stats.background_std", 0.02, 0, 1, "ViT: a patch whose pixels' standard deviation (in [0, 1] units) is at most this is background"),
      FL("stats.eps", {0.3}, 0, 1, "sink-score thresholds (a head sinks if mean attention to token 0 > eps)"),
      S("stats.source", {"auto", "probe", "train", "both"},
        "where the statistics are measured. auto: train where the config allows it (a decoder whose "
        "mask keeps the leading block a shorter forward, micro-batches of at least probe_batch), else probe. "
        "probe: a separate no-grad forward of the fixed probe batch after "
        "the step's update. train: no extra forward; the step's own training forward (its first micro-batch), "
        "restricted to its first probe_batch sequences and first probe_len positions, which under a causal, "
        "sliding or prefix (prefix_len <= probe_len) mask is exactly a probe_len-token forward of those "
        "sequences: the same rows, on fresh training windows, with the weights before the step's update "
        "(a row at step s measures the weights after s - 1 updates; no row at step 0). both: the probe rows "
        "and the train ones under train_batch/"),
      I("stats.flush_every", 10, 1, 1 << 20, "statistics rows buffered before writing"),
      B("stats.maps", false, "save full attention maps of the probe batch"),
      IL("stats.map_layers", {}, 0, 1024, "layers whose maps are saved; empty = all"),

      Text("run.name", "", "run name; empty = the config file name"),
      Text("run.dir", "runs", "parent directory of run folders"),
      B("run.overwrite", false, "replace an existing run folder"),
  };
}

}  // namespace

const std::vector<KeySpec>& schema() {
  static const std::vector<KeySpec> s = build_schema();
  return s;
}

const KeySpec* find_key(const std::string& key) {
  for (const KeySpec& k : schema())
    if (k.key == key) return &k;
  return nullptr;
}

const std::vector<std::string>& sections() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> out;
    for (const KeySpec& k : schema())
      if (out.empty() || out.back() != k.section()) out.push_back(k.section());
    return out;
  }();
  return names;
}

const std::vector<std::pair<std::string, std::string>>& preset_values(const std::string& preset) {
  static const std::vector<std::pair<std::string, std::string>> llama = {
      {"model.norm", "rmsnorm"}, {"model.pos", "rope"}, {"model.ffn", "swiglu"},
      {"model.bias", "false"},   {"model.tie_embeddings", "false"}};
  static const std::vector<std::pair<std::string, std::string>> gpt2 = {
      {"model.norm", "layernorm"}, {"model.pos", "learned"}, {"model.ffn", "gelu"},
      {"model.bias", "true"},      {"model.tie_embeddings", "true"}};
  static const std::vector<std::pair<std::string, std::string>> none;
  if (preset == "llama") return llama;
  if (preset == "gpt2") return gpt2;
  SL_CHECK(preset == "none", "unknown model.preset '" + preset + "'; valid: llama, gpt2, none");
  return none;
}

// Why the training forward's leading probe_batch x probe_len block is not the probe forward of
// those tokens under this config, or "" when it is.
static std::string leading_block_problem(const Config& c) {
  if (c.s("model.type") != "decoder") return "needs model.type = decoder";
  // Queries before probe_len must see no key at or after it, or the block is not a shorter forward.
  const std::string mask = c.s("attention.mask");
  if (mask == "bidirectional" || (mask == "prefix" && c.i("attention.prefix_len") > c.i("stats.probe_len")))
    return "reads the first stats.probe_len (" + num(c.i("stats.probe_len")) +
           ") positions of the training forward, which equal a shorter forward only when no query there sees a "
           "later key; attention.mask = " + mask +
           (mask == "prefix" ? " with prefix_len " + num(c.i("attention.prefix_len")) : "") +
           " breaks that: use stats.source = probe, or a prefix_len <= probe_len";
  const int64_t rows = micro_batch(c);
  if (rows < c.i("stats.probe_batch"))
    return "measures stats.probe_batch (" + num(c.i("stats.probe_batch")) + ") sequences of a micro-batch of " +
           num(rows) + "; lower stats.probe_batch";
  return "";
}

int64_t micro_batch(const Config& c) {
  return c.i("train.micro_batch") > 0 ? c.i("train.micro_batch") : c.i("train.batch_size") / train::dist::size();
}

std::string stats_source(const Config& c) {
  const std::string source = c.s("stats.source");
  if (source != "auto") return source;
  return leading_block_problem(c).empty() ? "train" : "probe";
}

void check_dependencies(const Config& c) {
  const int64_t d = c.i("model.d_model"), h = c.i("model.n_heads");
  SL_CHECK(d % h == 0, "model.d_model (" + num(d) + ") must be divisible by model.n_heads (" + num(h) + ")");
  SL_CHECK(c.s("model.pos") != "rope" || (d / h) % 2 == 0,
           "model.pos = rope needs an even head dim, got model.d_model / model.n_heads = " + num(d) + " / " +
               num(h) + " = " + num(d / h));
  const std::string mask = c.s("attention.mask");
  const int64_t context = c.i("model.context");
  SL_CHECK(mask != "prefix" || c.i("attention.prefix_len") < context,
           "attention.prefix_len (" + num(c.i("attention.prefix_len")) + ") must be < model.context (" +
               num(context) + ") when attention.mask = prefix");
  SL_CHECK(mask != "sliding" || c.i("attention.window") >= 1,
           "attention.window must be >= 1 when attention.mask = sliding, got " + num(c.i("attention.window")));
  const int64_t experts = c.i("moe.experts"), top_k = c.i("moe.top_k");
  SL_CHECK(experts == 0 || top_k <= experts,
           "moe.top_k (" + num(top_k) + ") must be <= moe.experts (" + num(experts) + ")");
  const int64_t batch = c.i("train.batch_size"), micro = c.i("train.micro_batch");
  SL_CHECK(micro == 0 || batch % micro == 0,
           "train.micro_batch (" + num(micro) + ") must divide train.batch_size (" + num(batch) +
               "); 0 = no accumulation");
  const int64_t image = c.i("vit.image_size"), patch = c.i("vit.patch");
  SL_CHECK(image % patch == 0,
           "vit.image_size (" + num(image) + ") must be divisible by vit.patch (" + num(patch) + ")");
  const std::string source = c.s("stats.source");
  if (source == "train" || source == "both") {
    const std::string why = leading_block_problem(c);
    SL_CHECK(why.empty(), "stats.source = " + source + " " + why);
  }
  SL_CHECK(c.s("model.type") != "decoder" || c.i("stats.probe_len") <= context,
           "stats.probe_len (" + num(c.i("stats.probe_len")) + ") must be <= model.context (" + num(context) +
               ")");
}

int64_t auto_d_ff(int64_t d_model, const std::string& ffn) {
  const bool gated = ffn == "swiglu" || ffn == "geglu" || ffn == "reglu";
  if (!gated) return 4 * d_model;
  return (d_model + 2) / 3 * 8;  // ceil(8/3 * d / 8) * 8 = ceil(d / 3) * 8
}

}  // namespace sl
