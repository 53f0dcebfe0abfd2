#include "train/lm_data.h"

#include <filesystem>

#include "data/files.h"
#include "engine/error.h"

namespace sl::train {

static std::string brown_text() {
  std::string text;
  for (auto& d : data::brown_documents(data::default_brown_dir())) text += d.text + "\n";
  return text;
}

LMData open_lm_data(const Config& cfg, int64_t batch, int64_t seq_len, int64_t probe_batch, int64_t probe_len) {
  const std::string source = cfg.s("data.source");
  data::BatchShape shape;
  shape.batch = (int)batch;
  shape.seq_len = (int)seq_len;
  shape.seed = (uint64_t)cfg.i("data.seed");
  shape.first = data::parse_first_token(cfg.s("data.first_token"));
  shape.fixed_token = (int32_t)cfg.i("data.fixed_token");
  data::BatchShape val_shape = shape;
  val_shape.seed = shape.seed ^ 0x5eed5eedULL;  // validation draws never repeat training draws
  data::BatchShape probe_shape = val_shape;
  probe_shape.batch = (int)probe_batch;
  probe_shape.seq_len = (int)probe_len;

  LMData d;
  // A synthetic source of any kind: `make(shape)` builds it; validation and probe use other seeds.
  auto synthetic = [&](std::function<std::unique_ptr<data::TokenSource>(const data::BatchShape&)> make) {
    d.train = make(shape);
    d.make_val = [make, val_shape] { return make(val_shape); };
    d.probe = make(probe_shape)->next_batch();
    d.vocab_size = d.train->vocab_size();
    d.bos = d.train->bos();
    d.encode = [](const std::string& s) {  // synthetic tokens are written as numbers
      std::vector<int32_t> ids;
      for (size_t p = 0; p < s.size();) {
        size_t end;
        ids.push_back((int32_t)std::stol(s.substr(p), &end));
        p += end;
        while (p < s.size() && s[p] == ' ') ++p;
      }
      return ids;
    };
    d.decode = [](const std::vector<int32_t>& ids) {
      std::string s;
      for (auto t : ids) {
        s += ' ';
        s += std::to_string(t);
      }
      return s;
    };
  };

  const int n = (int)cfg.i("data.vocab");
  if (source == "random") {
    synthetic([n](const data::BatchShape& s) { return std::make_unique<data::UniformSource>(n, s); });
    return d;
  }
  if (source == "repeat") {
    int period = (int)cfg.i("data.repeat_period");
    synthetic([n, period](const data::BatchShape& s) { return std::make_unique<data::RepeatSource>(n, period, s); });
    return d;
  }
  if (source == "backcopy") {
    std::string text = cfg.s("data.backcopy_text").empty() ? brown_text()
                                                                                : data::read_text_file(cfg.s("data.backcopy_text"));
    int k = (int)cfg.i("data.backcopy_triggers");
    auto shared = std::make_shared<std::string>(std::move(text));
    synthetic([shared, k](const data::BatchShape& s) { return std::make_unique<data::BackcopySource>(*shared, s, k); });
    auto chars = std::make_shared<data::BackcopySource>(*shared, shape, k);
    d.decode = [chars](const std::vector<int32_t>& ids) {
      std::string s;
      for (auto t : ids) s += t == chars->bos() ? '|' : chars->char_of(t);
      return s;
    };
    return d;
  }

  // The prepared corpus (and the Markov source fitted to it).
  const std::string dir = cfg.s("data.dir");
  SL_CHECK(std::filesystem::exists(dir + "/manifest.txt"),
           "data.dir '" + dir + "' has no prepared corpus; run: sinklab prepare-data --out " + dir);
  auto stream = std::make_shared<data::TokenStream>(data::TokenStream::open(dir));
  auto tok = std::make_shared<data::Tokenizer>(data::Tokenizer::load(dir + "/" + stream->manifest().tokenizer));
  const int vocab = stream->manifest().vocab_size;
  if (source == "markov") {
    int order = (int)cfg.i("data.markov_order");
    synthetic([stream, vocab, order](const data::BatchShape& s) {
      return std::make_unique<data::MarkovSource>(stream->train(), vocab, order, s);
    });
  } else {
    SL_CHECK(source == "corpus", "data.source '" + source + "' is not a token source for a language model");
    data::BatcherOptions opt;
    static_cast<data::BatchShape&>(opt) = shape;
    opt.mode = data::parse_window_mode(cfg.s("data.windows"));
    opt.max_tokens = cfg.i("data.train_tokens");
    d.train = std::make_unique<data::Batcher>(stream->train(), vocab, opt);
    data::BatcherOptions vopt = opt;
    static_cast<data::BatchShape&>(vopt) = val_shape;
    vopt.max_tokens = 0;
    d.make_val = [stream, vocab, vopt] { return std::make_unique<data::Batcher>(stream->val(), vocab, vopt); };
    d.probe = data::probe_batch(stream->val(), probe_shape);
    d.vocab_size = vocab;
    d.bos = stream->manifest().bos;
  }
  d.encode = [tok](const std::string& s) { return tok->encode(s); };
  d.decode = [tok](const std::vector<int32_t>& ids) { return tok->decode(ids); };
  return d;
}

}  // namespace sl::train
