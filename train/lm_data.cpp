#include "train/lm_data.h"

#include <filesystem>

#include "data/files.h"
#include "engine/error.h"

namespace sl::train {

// `shape` with another batch and window length.
static data::BatchShape resized(data::BatchShape shape, int64_t batch, int64_t seq_len) {
  shape.batch = (int)batch;
  shape.seq_len = (int)seq_len;
  return shape;
}

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

  LMData d;
  // A synthetic source of any kind: `make(shape)` builds it; validation and probe use other seeds.
  auto synthetic = [&](std::function<std::unique_ptr<data::TokenSource>(const data::BatchShape&)> make) {
    d.train = make(shape);
    d.make_val = [make, val_shape] { return make(val_shape); };
    d.held_out = [make, val_shape](int64_t rows, int64_t len) {
      return make(resized(val_shape, rows, len))->next_batch();
    };
    d.probe = d.held_out(probe_batch, probe_len);
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
    d.held_out = [stream, val_shape](int64_t rows, int64_t len) {
      return data::probe_batch(stream->val(), resized(val_shape, rows, len));
    };
    d.probe = d.held_out(probe_batch, probe_len);
    d.held_out_by_source = [stream, val_shape, dir](int64_t rows, int64_t len) {
      const std::vector<std::string> sources = data::validation_sources(dir);
      const std::vector<int64_t>& starts = stream->val().doc_starts();
      SL_CHECK(sources.size() == starts.size(), dir + "/corpus.txt names " + std::to_string(sources.size()) +
                                                    " validation documents but the shards hold " +
                                                    std::to_string(starts.size()) + "; prepare the data again");
      std::map<std::string, std::vector<int64_t>> whole;  // per source, documents that hold a window
      for (size_t i = 0; i < starts.size(); ++i) {
        const int64_t end = i + 1 < starts.size() ? starts[i + 1] : stream->val().size();
        if (end - starts[i] >= len + 1) whole[sources[i]].push_back(starts[i]);
      }
      std::map<std::string, std::vector<int32_t>> out;
      for (const auto& [source, at] : whole)
        out[source] = data::windows_at(stream->val(), at, resized(val_shape, rows, len));
      return out;
    };
    d.vocab_size = vocab;
    d.bos = stream->manifest().bos;
  }
  d.encode = [tok](const std::string& s) { return tok->encode(s); };
  d.decode = [tok](const std::vector<int32_t>& ids) { return tok->decode(ids); };
  return d;
}

}  // namespace sl::train
