#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <unistd.h>

#include "data/files.h"
#include "data/tokenizer.h"
#include "engine/error.h"

using namespace sl::data;
namespace fs = std::filesystem;

static const std::string kText =
    "The quick brown fox jumps over the lazy dog. The dog sleeps; the fox runs!\n\n"
    "  Indented line\twith a tab, numbers 12345 and 3.14159, and UTF-8: caf\xc3\xa9, na\xc3\xafve, "
    "\xe2\x80\x9cquoted\xe2\x80\x9d, \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e, emoji \xf0\x9f\x98\x80.\r\n"
    "Trailing spaces   \n   \n\n(parentheses) [brackets] {braces} -- dashes --- and ... ellipses\n";

static std::string temp_path(const std::string& name) {
  return (fs::temp_directory_path() / ("sl_tok_" + std::to_string(getpid()) + "_" + name)).string();
}

TEST_CASE("split_words attaches one leading space and covers the text exactly", "[data][bpe]") {
  auto w = split_words("Hello  world,\n 42 times!!");
  std::vector<std::string> got(w.begin(), w.end());
  REQUIRE(got == std::vector<std::string>{"Hello", " ", " world", ",", "\n", " 42", " times", "!!"});
  std::string joined;
  for (auto x : split_words(kText)) joined += x;
  REQUIRE(joined == kText);
}

TEST_CASE("BPE encode/decode round trip is exact, byte-level too", "[data][bpe]") {
  std::string corpus;
  for (int i = 0; i < 20; ++i) corpus += kText;
  Tokenizer tok = Tokenizer::train(corpus, 400);
  REQUIRE(tok.vocab_size() == 400);
  REQUIRE(tok.bos() == 399);
  for (const std::string& s : {kText, std::string(""), std::string(" "), std::string("\n\n\n"),
                               std::string("unseen wordz \xc3\xa9\xc3\xa9 \x01\x02\xff binary"), std::string(300, 'a')}) {
    auto ids = tok.encode(s);
    REQUIRE(tok.decode(ids) == s);
    for (int32_t id : ids) REQUIRE((id >= 0 && id < tok.bos()));
  }
  // Learned merges compress the training text well below one token per byte.
  REQUIRE(tok.encode(kText).size() < kText.size() / 2);
  Tokenizer bytes = Tokenizer::byte_level();
  REQUIRE(bytes.vocab_size() == 257);
  REQUIRE(bytes.bos() == 256);
  auto ids = bytes.encode(kText);
  REQUIRE(ids.size() == kText.size());
  REQUIRE(bytes.decode(ids) == kText);
  REQUIRE(bytes.token_bytes(bytes.bos()).empty());
}

TEST_CASE("BPE learns the expected merges on a tiny corpus", "[data][bpe]") {
  // Words: "aaab" x1, " aaab" x2, " ab" x2. Pair counts: aa = 2 + 4 = 6, ab = 1 + 2 + 2 = 5, " a" = 4.
  // After aa -> 256: ab = 5, (256,a) = 3, (" ",256) = 2, (" ",a) = 2.
  // After ab -> 257: (256,257) = 3, (" ",256) = 2, (" ",257) = 2.
  Tokenizer tok = Tokenizer::train("aaab aaab aaab ab ab", 257 + 3);
  REQUIRE(tok.merges().size() == 3);
  CHECK(tok.merges()[0] == std::pair<int32_t, int32_t>{'a', 'a'});
  CHECK(tok.merges()[1] == std::pair<int32_t, int32_t>{'a', 'b'});
  CHECK(tok.merges()[2] == std::pair<int32_t, int32_t>{256, 257});
  CHECK(tok.token_bytes(258) == "aaab");
  CHECK(tok.encode("aaab ab") == std::vector<int32_t>{258, ' ', 257});
  // Asking for more merges than the text has pairs stops early (every word is one token).
  Tokenizer all = Tokenizer::train("aaab aaab aaab ab ab", 1000);
  CHECK(all.encode("aaab aaab ab").size() == 3);
  CHECK(all.vocab_size() < 1000);
}

TEST_CASE("tokenizer save/load round trip and corrupt files rejected with the line", "[data][bpe]") {
  std::string corpus;
  for (int i = 0; i < 10; ++i) corpus += kText;
  Tokenizer tok = Tokenizer::train(corpus, 320);
  std::string path = temp_path("tok.txt");
  tok.save(path);
  Tokenizer back = Tokenizer::load(path);
  REQUIRE(back.merges() == tok.merges());
  REQUIRE(back.vocab_size() == 320);
  REQUIRE(back.encode(kText) == tok.encode(kText));

  std::string good = read_file(path);
  auto corrupt = [&](const std::string& content, const std::string& expect) {
    std::ofstream(path, std::ios::binary | std::ios::trunc) << content;
    try {
      Tokenizer::load(path);
      FAIL("corrupt tokenizer accepted: " << expect);
    } catch (const sl::Error& e) {
      std::string msg = e.what();
      INFO(msg);
      CHECK(msg.find(path) != std::string::npos);
      CHECK(msg.find(expect) != std::string::npos);
    }
  };
  // Line 6 is the second merge: change its bytes.
  size_t l5 = 0;
  for (int i = 0; i < 5; ++i) l5 = good.find('\n', l5) + 1;
  size_t l6 = good.find('\n', l5);
  std::string bad_bytes = good.substr(0, l6) + "XYZ" + good.substr(l6);
  corrupt(bad_bytes, "line 6");
  corrupt(good.substr(0, good.rfind('\n', good.size() / 2) + 1), "truncated");
  corrupt(good.substr(0, good.size() / 2), "do not match");  // cut mid-line
  corrupt("sinklab-bpe 2\n" + good.substr(good.find('\n') + 1), "line 1");
  std::string wrong_vocab = good;
  wrong_vocab.replace(wrong_vocab.find("vocab_size 320"), 14, "vocab_size 999");
  corrupt(wrong_vocab, "line 4");
  fs::remove(path);
}
