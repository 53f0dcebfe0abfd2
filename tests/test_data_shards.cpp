#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "tests/temp_dir.h"
#include "data/files.h"
#include "data/manifest.h"
#include "data/token_stream.h"
#include "engine/error.h"

using namespace sl::data;
namespace fs = std::filesystem;

namespace {

using sl::testing::TempDir;

// Two train shards and one val shard; BOS = 999; documents start with BOS.
Manifest write_small_set(const std::string& dir, int token_bytes, int vocab = 1000) {
  Manifest m;
  m.tokenizer = "tokenizer.txt";
  m.vocab_size = vocab;
  m.bos = vocab - 1;
  m.token_bytes = token_bytes;
  int32_t b = m.bos;
  m.shards.push_back(write_shard(dir, "train_000.bin", "train", {b, 1, 2, 3, b, 4, 5}, token_bytes));
  m.shards.push_back(write_shard(dir, "train_001.bin", "train", {6, 7, b, 8, 9, vocab - 2}, token_bytes));
  m.shards.push_back(write_shard(dir, "val_000.bin", "val", {b, 10, 11, b, 12}, token_bytes));
  m.stats["source.test.bytes"] = "123";
  write_manifest(dir + "/manifest.txt", m);
  return m;
}

void require_error(const std::function<void()>& f, const std::string& a, const std::string& b) {
  try {
    f();
    FAIL("expected an error mentioning " << a << " and " << b);
  } catch (const sl::Error& e) {
    std::string msg = e.what();
    INFO(msg);
    CHECK(msg.find(a) != std::string::npos);
    CHECK(msg.find(b) != std::string::npos);
  }
}

}  // namespace

TEST_CASE("shards round trip as one virtual concatenation with document starts", "[data][shards]") {
  for (int token_bytes : {2, 4}) {
    TempDir dir("rt" + std::to_string(token_bytes));
    int vocab = token_bytes == 2 ? 1000 : 70000;
    write_small_set(dir.str(), token_bytes, vocab);
    TokenStream ts = TokenStream::open(dir.str());
    int32_t b = vocab - 1;
    const TokenSplit& tr = ts.train();
    REQUIRE(tr.size() == 13);
    std::vector<int32_t> all(13);
    tr.copy(0, 13, all.data());
    REQUIRE(all == std::vector<int32_t>{b, 1, 2, 3, b, 4, 5, 6, 7, b, 8, 9, vocab - 2});
    REQUIRE(tr[9] == b);
    REQUIRE(tr.doc_starts() == std::vector<int64_t>{0, 4, 9});
    std::vector<int32_t> mid(4);
    tr.copy(5, 4, mid.data());  // crosses the shard boundary
    REQUIRE(mid == std::vector<int32_t>{4, 5, 6, 7});
    REQUIRE(ts.val().size() == 5);
    REQUIRE(ts.val().doc_starts() == std::vector<int64_t>{0, 3});
    REQUIRE(ts.manifest().stats.at("source.test.bytes") == "123");
    TokenSplit first = tr.prefix(6);
    REQUIRE(first.size() == 6);
    REQUIRE(first.doc_starts() == std::vector<int64_t>{0, 4});
    REQUIRE(first[5] == 4);
    REQUIRE_THROWS_AS(first[6], sl::Error);
  }
}

TEST_CASE("corrupt, truncated or mismatched shards are rejected naming the file", "[data][shards]") {
  TempDir dir("bad");
  const std::string d = dir.str();
  write_small_set(d, 2);
  const std::string shard = d + "/train_001.bin";
  std::string bytes = read_file(shard);

  std::string flipped = bytes;
  flipped[3] ^= 1;
  std::ofstream(shard, std::ios::binary | std::ios::trunc) << flipped;
  require_error([&] { TokenStream::open(d); }, "train_001.bin", "checksum");
  REQUIRE_NOTHROW(TokenStream::open(d, false));  // lazy: sizes only

  std::ofstream(shard, std::ios::binary | std::ios::trunc) << bytes.substr(0, bytes.size() - 2);
  require_error([&] { TokenStream::open(d, false); }, "train_001.bin", "truncated");

  fs::remove(shard);
  require_error([&] { TokenStream::open(d); }, "train_001.bin", "cannot open");

  // A shard holding a token outside the vocabulary (checksum consistent, manifest says vocab 1000).
  Manifest m = write_small_set(d, 2);
  m.shards[1] = write_shard(d, "train_001.bin", "train", {6, 7, 5000}, 2);
  write_manifest(d + "/manifest.txt", m);
  require_error([&] { TokenStream::open(d); }, "train_001.bin", "outside vocab");

  std::ofstream(d + "/manifest.txt", std::ios::trunc) << "format: sinklab-tokens 1\nvocab_size: ten\n";
  require_error([&] { TokenStream::open(d); }, "manifest.txt line 2", "number");
}
