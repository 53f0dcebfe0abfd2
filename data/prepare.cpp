#include "data/prepare.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <optional>

#include "data/clean.h"
#include "data/corpus_file.h"
#include "data/files.h"
#include "data/token_stream.h"
#include "data/tokenizer.h"
#include "engine/error.h"

namespace fs = std::filesystem;

namespace sl::data {

bool is_validation(const std::string& text, double val_fraction) {
  return (double)(fnv1a64(text) % 1000000) < val_fraction * 1000000;
}

// Each split in hash order, so that any prefix of it (the token limit of data-amount
// experiments) is a mix of all sources rather than the first source alone.
Splits split_documents(const std::vector<Document>& docs, double val_fraction) {
  std::vector<std::pair<uint64_t, const Document*>> order;
  for (const auto& d : docs) order.push_back({fnv1a64(d.text), &d});
  std::sort(order.begin(), order.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  Splits s;
  for (auto& [h, d] : order) (is_validation(d->text, val_fraction) ? s.val : s.train).push_back(d);
  return s;
}

std::vector<std::string> validation_sources(const std::string& dir) {
  const std::string path = dir + "/corpus.txt";
  const Manifest m = read_manifest(dir + "/manifest.txt");
  auto docs = read_corpus(path, read_corpus_origin(path));
  SL_CHECK(docs, path + " is missing or damaged: the sources of the validation documents are unknown "
                        "(sinklab prepare-data --out " + dir + " writes it)");
  SL_CHECK(m.stats.count("val_fraction"), dir + "/manifest.txt has no stat.val_fraction");
  std::vector<std::string> sources;
  for (const Document* d : split_documents(*docs, std::stod(m.stats.at("val_fraction"))).val)
    sources.push_back(d->source);
  return sources;
}

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ",") + x;
  return s;
}

// A sample of training text for BPE: the first training documents (in hash order, so a mix of
// all sources) up to `bytes`.
std::string tokenizer_sample(const std::vector<const Document*>& train, int64_t bytes) {
  std::string sample;
  for (const Document* d : train) {
    if ((int64_t)sample.size() >= bytes) break;
    sample += d->text + "\n";
  }
  return sample;
}

bool manifest_matches(const std::string& dir, const Tokenizer& tok) {
  if (!fs::exists(dir + "/manifest.txt")) return false;
  try {
    TokenStream ts = TokenStream::open(dir, true);
    return ts.manifest().vocab_size == tok.vocab_size() && ts.manifest().bos == tok.bos();
  } catch (const Error&) {
    return false;
  }
}

}  // namespace

PrepareReport prepare(const PrepareOptions& opt, const Progress& progress) {
  SL_CHECK(!opt.out_dir.empty(), "prepare: out_dir is empty");
  SL_CHECK(opt.val_fraction > 0 && opt.val_fraction < 0.5, "prepare: val_fraction must be in (0, 0.5)");
  fs::create_directories(opt.out_dir);
  auto report = [&](const std::string& stage, double f) {
    if (progress) progress(stage, f);
  };
  PrepareReport rep;
  const std::string dir = opt.out_dir, sources = join(opt.corpus.sources);
  const std::string origin = sources + " gcide_entries_per_doc=" + std::to_string(opt.corpus.gcide_entries_per_doc);

  // Stage 1: corpus (load, clean, de-duplicate).
  auto t0 = std::chrono::steady_clock::now();
  report("corpus", 0);
  auto cached = read_corpus(dir + "/corpus.txt", origin);
  std::vector<Document> docs;
  if (cached) {
    docs = std::move(*cached);
    rep.stage_seconds["corpus"] = 0;
  } else {
    std::vector<Document> raw = load_sources(opt.corpus, [&](double f) { report("corpus", 0.9 * f); });
    rep.raw_documents = (int64_t)raw.size();
    docs = clean_and_dedup(std::move(raw));
    // Later stages were made from another corpus: they are rebuilt.
    fs::remove(dir + "/tokenizer.txt");
    fs::remove(dir + "/manifest.txt");
    write_corpus(dir + "/corpus.txt", origin, docs);
    rep.stage_seconds["corpus"] = seconds_since(t0);
  }
  report("corpus", 1);
  SL_CHECK(!docs.empty(), "prepare: the corpus is empty (sources: " + sources + ")");

  const auto [train, val] = split_documents(docs, opt.val_fraction);
  SL_CHECK(!train.empty() && !val.empty(), "prepare: need documents in both splits (have " +
                                               std::to_string(train.size()) + " train, " +
                                               std::to_string(val.size()) + " validation)");

  // Stage 2: tokenizer.
  t0 = std::chrono::steady_clock::now();
  report("tokenizer", 0);
  const std::string tok_path = dir + "/tokenizer.txt";
  const int want_vocab = opt.byte_level ? 257 : opt.vocab_size;
  std::optional<Tokenizer> tok;
  if (fs::exists(tok_path)) {
    try {
      Tokenizer t = Tokenizer::load(tok_path);
      if (t.vocab_size() == want_vocab) tok = std::move(t);
    } catch (const Error&) {
    }
  }
  rep.stage_seconds["tokenizer"] = 0;
  if (!tok) {
    tok = opt.byte_level ? Tokenizer::byte_level()
                         : Tokenizer::train(tokenizer_sample(train, opt.tokenizer_sample_bytes), want_vocab);
    fs::remove(dir + "/manifest.txt");  // shards of another tokenizer
    tok->save(tok_path);
    rep.stage_seconds["tokenizer"] = seconds_since(t0);
  }
  report("tokenizer", 1);

  // Stage 3: encode into shards, then the manifest (written last: its presence marks completion).
  t0 = std::chrono::steady_clock::now();
  report("encode", 0);
  rep.stage_seconds["encode"] = 0;
  if (!manifest_matches(dir, *tok)) {
    Manifest m;
    m.tokenizer = "tokenizer.txt";
    m.vocab_size = tok->vocab_size();
    m.bos = tok->bos();
    m.token_bytes = m.vocab_size < 65536 ? 2 : 4;
    int64_t total = 0, done = 0;
    for (const auto& d : docs) total += (int64_t)d.text.size();
    for (const auto* split : {&train, &val}) {
      const std::string name = split == &train ? "train" : "val";
      std::vector<int32_t> buf;
      int shard = 0;
      auto flush = [&] {
        char file[64];
        std::snprintf(file, sizeof file, "%s_%03d.bin", name.c_str(), shard++);
        m.shards.push_back(write_shard(dir, file, name, buf, m.token_bytes));
        buf.clear();
      };
      int64_t tokens = 0;
      for (const Document* d : *split) {
        buf.push_back(tok->bos());
        tok->encode_append(d->text, buf);
        done += (int64_t)d->text.size();
        report("encode", (double)done / total);
        if ((int64_t)buf.size() >= opt.shard_tokens) {
          tokens += (int64_t)buf.size();
          flush();
        }
      }
      tokens += (int64_t)buf.size();
      if (!buf.empty()) flush();
      m.stats["tokens." + name] = std::to_string(tokens);
      m.stats["documents." + name] = std::to_string(split->size());
    }
    int64_t bytes_total = 0;
    for (const auto& d : docs) {
      auto add = [&](const std::string& k, int64_t v) {
        m.stats[k] = std::to_string((m.stats.count(k) ? std::stoll(m.stats[k]) : 0) + v);
      };
      add("source." + d.source + ".bytes", (int64_t)d.text.size());
      add("source." + d.source + ".documents", 1);
      bytes_total += (int64_t)d.text.size();
    }
    m.stats["bytes.total"] = std::to_string(bytes_total);
    m.stats["documents.total"] = std::to_string(docs.size());
    char frac[32];
    std::snprintf(frac, sizeof frac, "%g", opt.val_fraction);
    m.stats["val_fraction"] = frac;
    write_manifest(dir + "/manifest.txt", m);
    rep.stage_seconds["encode"] = seconds_since(t0);
  }
  report("encode", 1);
  rep.manifest = read_manifest(dir + "/manifest.txt");
  return rep;
}

}  // namespace sl::data
