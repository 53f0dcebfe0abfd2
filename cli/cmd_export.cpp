#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "cli/commands.h"
#include "data/files.h"
#include "data/hf_tokenizer.h"
#include "engine/safetensors.h"
#include "train/export_hf.h"
#include "train/run_dir.h"

namespace fs = std::filesystem;

namespace sl::cli {

const char* const kExportHelp =
    "usage: sinklab export runs/NAME [--step N] --out DIR [--overwrite]\n\n"
    "Writes the run's newest checkpoint (or the one of step N) into DIR for the PyTorch ecosystem:\n"
    "  model.safetensors      the weights, float32\n"
    "  config.json            transformers' config: LlamaForCausalLM (rmsnorm, rope, swiglu) or\n"
    "                         GPT2LMHeadModel (layernorm, learned positions, gelu); the tensors\n"
    "                         then have transformers' names and layouts\n"
    "  tokenizer.json         the run's BPE tokenizer for the tokenizers library (corpus runs),\n"
    "  tokenizer_config.json  with its transformers config; BOS is <|bos|>\n"
    "  sinklab_config.json    always: the full resolved config, the step, which names the tensors have\n"
    "A model transformers cannot express (another attention kernel, off-by-one, sink logits, K/V bias\n"
    "slots, sink tokens, gates, QK-norm, masks other than causal, other positions or FFNs, post-norm,\n"
    "MoE, ViT) gets no config.json: its tensors keep sinklab's names ([out, in] weights, RoPE on pairs\n"
    "(2i, 2i+1)) and the command says why. Load the others with\n"
    "  transformers.AutoModelForCausalLM.from_pretrained(DIR), AutoTokenizer.from_pretrained(DIR).\n"
    "DIR is written as DIR.tmp and renamed when complete. An existing DIR is refused unless\n"
    "--overwrite, which replaces only an earlier export (a directory with sinklab_config.json).\n";

namespace {

std::string list(const std::vector<int64_t>& steps) {
  std::string s;
  for (int64_t v : steps) s += (s.empty() ? "" : ", ") + std::to_string(v);
  return s;
}

}  // namespace

int cmd_export(const Args& args) {
  SL_CHECK(!args.empty() && args[0].rfind("--", 0) != 0, "missing run directory (see sinklab export --help)");
  const train::RunDir dir{args[0]};
  std::string out;
  int64_t step = -1;
  bool overwrite = false;
  for (size_t i = 1; i < args.size(); ++i) {
    if (args[i] == "--overwrite") {
      overwrite = true;
      continue;
    }
    SL_CHECK(args[i] == "--step" || args[i] == "--out",
             "unknown option '" + args[i] + "' (valid: --step N, --out DIR, --overwrite)");
    SL_CHECK(i + 1 < args.size(), "option " + args[i] + " needs a value");
    const std::string& v = args[++i];
    if (args[i - 1] == "--out") {
      out = v;
      continue;
    }
    size_t end = 0;
    try {
      step = std::stoll(v, &end);
    } catch (const std::exception&) {
      end = 0;
    }
    SL_CHECK(end == v.size() && step >= 0, "--step wants a checkpoint's step (a whole number >= 0), got '" + v + "'");
  }
  SL_CHECK(!out.empty(), "missing --out DIR (see sinklab export --help)");
  while (out.size() > 1 && out.back() == '/') out.pop_back();
  SL_CHECK(fs::is_directory(dir.path), "'" + dir.path + "' is not a directory (a run directory, e.g. runs/NAME)");
  SL_CHECK(fs::exists(dir.config()), "'" + dir.path + "' has no config.yaml: it is not a run directory");
  const std::vector<int64_t> steps = dir.checkpoint_steps();
  SL_CHECK(!steps.empty(), dir.path + " has no checkpoints to export (" + dir.checkpoints() + " holds none)");
  if (step < 0) step = steps.back();
  SL_CHECK(std::find(steps.begin(), steps.end(), step) != steps.end(),
           dir.path + " has no checkpoint of step " + std::to_string(step) + "; steps with checkpoints: " + list(steps));
  if (fs::exists(out)) {
    SL_CHECK(overwrite, "'" + out + "' already exists; pass --overwrite to replace it, or choose another --out");
    SL_CHECK(fs::is_directory(out) && fs::exists(out + "/sinklab_config.json"),
             "--overwrite replaces only an earlier export, and '" + out + "' is not one (it has no sinklab_config.json)");
  }

  const std::string path = dir.checkpoint(step);
  Checkpoint ck;
  try {
    ck = load_checkpoint(path);
  } catch (const Error& e) {
    throw Error(std::string(e.what()) + "; nothing was exported (steps with checkpoints: " + list(steps) + ")");
  }
  const Config cfg = Config::from_string(ck.text("config"));
  const train::HFClass cls = train::transformers_class(cfg);
  const std::map<std::string, Tensor> tensors = train::export_tensors(cfg, cls, ck);
  std::optional<train::RunTokenizer> tok;
  data::HFTokenizer tok_json;
  if (cfg.s("model.type") == "decoder") {
    tok = train::run_tokenizer(cfg, train::checkpoint_decoder_config(cfg, ck).vocab_size);
    if (tok->tokenizer) tok_json = data::hf_tokenizer_json(*tok->tokenizer);
  }
  const bool with_tokenizer = !tok_json.json.empty();

  // Everything goes into DIR.tmp first, which replaces DIR only once complete.
  const std::string tmp = out + ".tmp";
  fs::remove_all(tmp);
  try {
    fs::create_directories(tmp);
    save_safetensors(tmp + "/model.safetensors", tensors, {{"format", "pt"}});
    if (!cls.architecture.empty())
      data::write_file_atomic(tmp + "/config.json",
                              train::hf_config_json(cfg, cls, ck, with_tokenizer ? std::optional(tok->tokenizer->bos()) : std::nullopt));
    if (with_tokenizer) {
      data::write_file_atomic(tmp + "/tokenizer.json", tok_json.json);
      data::write_file_atomic(tmp + "/tokenizer_config.json", train::hf_tokenizer_config_json(cfg));
    }
    data::write_file_atomic(tmp + "/sinklab_config.json", train::sinklab_config_json(cfg, cls, ck));
  } catch (const std::exception& e) {
    std::error_code ignored;
    fs::remove_all(tmp, ignored);
    throw Error("writing " + tmp + ": " + e.what() + "; nothing was exported");
  }
  fs::remove_all(out);
  fs::rename(tmp, out);

  int64_t numel = 0;
  for (auto& [name, t] : tensors) numel += t.numel();
  std::printf("exported %s step %lld to %s/\n", dir.path.c_str(), (long long)step, out.c_str());
  std::printf("  model.safetensors     %zu tensors, %lld parameters, %s names\n", tensors.size(), (long long)numel,
              cls.architecture.empty() ? "sinklab's" : "transformers'");
  if (!cls.architecture.empty())
    std::printf("  config.json           %s: transformers.AutoModelForCausalLM.from_pretrained(\"%s\")\n",
                cls.architecture.c_str(), out.c_str());
  else
    std::printf("  no config.json: this model has no transformers class: %s\n", cls.why_not.c_str());
  if (with_tokenizer)
    std::printf("  tokenizer.json        %d tokens from %s, BOS %d = %s\n", tok->tokenizer->vocab_size(), tok->path.c_str(),
                tok->tokenizer->bos(), data::kBosText);
  else
    std::printf("  no tokenizer.json: %s\n",
                !tok ? "only decoder language models have a tokenizer"
                     : tok->tokenizer ? tok_json.why_not.c_str() : tok->why_not.c_str());
  std::printf("  sinklab_config.json   the full resolved config\n");
  return 0;
}

}  // namespace sl::cli
