// sinklab's side of the export checks (tests/python/test_export.py): the logits a run's checkpoint
// gives and the ids its tokenizer gives texts, computed by sinklab itself. Hidden: runs only when
// asked for with "[.export-reference]" and SINKLAB_RUN, SINKLAB_STEP and SINKLAB_EXPORT_DIR set.
// Reads <dir>/tokens.h5 ("tokens" [B, T]) and <dir>/texts/*.txt; writes <dir>/reference.h5 with
// "logits" [B*T, V] and, when the run has a tokenizer, "ids/<file stem>" for each text and
// "words/<file stem>", the byte lengths of its words (data::split_words).
#include <catch2/catch.hpp>
#include <filesystem>

#include "data/files.h"
#include "engine/checkpoint.h"
#include "train/checkpointing.h"
#include "train/export_hf.h"

using namespace sl;

namespace {

std::string env(const char* name) {
  const char* v = std::getenv(name);
  REQUIRE(v != nullptr);
  return v;
}

}  // namespace

TEST_CASE("export reference: a run's logits and token ids", "[.export-reference]") {
  const std::string dir = env("SINKLAB_EXPORT_DIR");
  const train::RunDir run{env("SINKLAB_RUN")};
  const std::string path = run.checkpoint(std::stoll(env("SINKLAB_STEP")));
  const Checkpoint ck = load_checkpoint(path);
  const Config cfg = Config::from_string(ck.text("config"));
  const models::DecoderConfig dc = train::checkpoint_decoder_config(cfg, ck);
  ParamStore ps;
  models::Decoder model(dc, ps);
  Rng rng(0);
  ps.finalize(rng);
  train::load_params(ck, ps, path);

  std::map<std::string, Tensor> out;
  const Tensor tokens = read_tensors_h5(dir + "/tokens.h5").at("tokens");
  std::vector<int32_t> ids;
  for (float t : tokens.to_vector()) ids.push_back((int32_t)t);
  {
    NoGrad no_grad;
    out["logits"] = model.forward(ids, tokens.size(0), tokens.size(1)).logits;
  }
  const train::RunTokenizer tok = train::run_tokenizer(cfg, dc.vocab_size);
  if (tok.tokenizer && std::filesystem::is_directory(dir + "/texts"))
    for (auto& e : std::filesystem::directory_iterator(dir + "/texts")) {
      const std::string text = data::read_file(e.path().string()), stem = e.path().stem().string();
      std::vector<float> ids, words;
      for (int32_t id : tok.tokenizer->encode(text)) ids.push_back((float)id);
      for (auto w : data::split_words(text)) words.push_back((float)w.size());
      out["ids/" + stem] = Tensor::from({(int64_t)ids.size()}, ids);
      out["words/" + stem] = Tensor::from({(int64_t)words.size()}, words);
    }
  write_tensors_h5(dir + "/reference.h5", out);
}
