#include <catch2/catch.hpp>
#include <map>

#include "data/backcopy.h"
#include "data/synthetic.h"
#include "engine/error.h"

using namespace sl::data;

static const std::string kText =
    "it was the best of times, it was the worst of times, it was the age of wisdom, it was the age of "
    "foolishness, it was the epoch of belief, it was the epoch of incredulity, it was the season of light, "
    "it was the season of darkness, it was the spring of hope, it was the winter of despair.";

static BatchShape shape(int batch, int T, uint64_t seed) {
  BatchShape s;
  s.batch = batch;
  s.seq_len = T;
  s.seed = seed;
  return s;
}

TEST_CASE("bigram-backcopy: the rule holds on every generated sequence", "[data][synthetic]") {
  BackcopySource src(kText, shape(16, 63, 1), 3, 64);
  const int W = 64, V = src.vocab_size();
  REQUIRE(src.bos() == V - 1);
  REQUIRE(src.char_of(0) == ' ');  // the most frequent character is a trigger
  REQUIRE(src.is_trigger(2));
  REQUIRE_FALSE(src.is_trigger(3));
  int64_t copies = 0, triggers = 0;
  for (int k = 0; k < 10; ++k) {
    auto b = src.next_batch();
    const auto& roles = src.roles();
    REQUIRE(roles.size() == b.size());
    for (int r = 0; r < 16; ++r) {
      const int32_t* row = b.data() + r * W;
      const uint8_t* role = roles.data() + r * W;
      REQUIRE(row[0] == src.bos());
      for (int j = 1; j < W; ++j) {
        REQUIRE((row[j] >= 0 && row[j] < src.bos()));
        REQUIRE(bool(role[j] & BackcopySource::kTrigger) == src.is_trigger(row[j]));
        bool after_trigger = j >= 3 && src.is_trigger(row[j - 1]);
        REQUIRE(bool(role[j] & BackcopySource::kCopy) == after_trigger);
        if (after_trigger) REQUIRE(row[j] == row[j - 2]);
        copies += after_trigger;
        triggers += src.is_trigger(row[j]);
      }
    }
  }
  REQUIRE(triggers > 500);  // spaces, 't' and 'e'/'s' are frequent in the text
  REQUIRE(copies > 400);
  // Transitions not made by the copy rule follow the text's bigrams: 'w' -> 'a' | 'i' | 'o' only.
  int32_t w = -1;
  for (int32_t t = 0; t < src.bos(); ++t)
    if (src.char_of(t) == 'w') w = t;
  REQUIRE(w >= 0);
  auto b = src.next_batch();
  for (size_t i = 1; i + 1 < b.size(); ++i)
    if (b[i] == w && (i + 1) % W != 0 && !(src.roles()[i + 1] & BackcopySource::kCopy))
      REQUIRE(std::string("aio").find(src.char_of(b[i + 1])) != std::string::npos);
}

TEST_CASE("synthetic sources: uniform, repeat, Markov; state resumes", "[data][synthetic]") {
  UniformSource u(13, shape(4, 30, 2));
  REQUIRE(u.vocab_size() == 14);
  auto ub = u.next_batch();
  for (size_t i = 0; i < ub.size(); ++i) REQUIRE((i % 31 == 0 ? ub[i] == 13 : ub[i] < 13));
  auto st = u.state();
  auto next = u.next_batch();
  UniformSource u2(13, shape(4, 30, 99));
  u2.set_state(st);
  REQUIRE(u2.next_batch() == next);

  RepeatSource rep(20, 5, shape(3, 23, 4));
  auto rb = rep.next_batch();
  for (int r = 0; r < 3; ++r)
    for (int j = 6; j < 24; ++j) REQUIRE(rb[r * 24 + j] == rb[r * 24 + j - 5]);
  REQUIRE((rb[1] != rb[24 + 1] || rb[2] != rb[24 + 2] || rb[3] != rb[24 + 3]));  // fresh pattern per row

  // A deterministic stream (cycle 0 1 2 3 4 after each BOS): an order-1 chain must reproduce it.
  std::vector<int32_t> toks;
  for (int d = 0; d < 50; ++d) {
    toks.push_back(9);
    for (int i = 0; i < 20; ++i) toks.push_back(i % 5);
  }
  MarkovSource mk(TokenSplit::from_tokens(toks, 9), 10, 1, shape(2, 15, 5));
  REQUIRE(mk.bos() == 9);
  auto mb = mk.next_batch();
  for (int r = 0; r < 2; ++r) {
    REQUIRE(mb[r * 16] == 9);
    REQUIRE(mb[r * 16 + 1] == 0);  // BOS is always followed by 0
    for (int j = 2; j < 16; ++j) {
      int32_t prev = mb[r * 16 + j - 1];
      // 4 is followed by 0 or (at a document end) BOS.
      if (prev != 4 && prev != 9) REQUIRE(mb[r * 16 + j] == prev + 1);
    }
  }
  REQUIRE_THROWS_AS(MarkovSource(TokenSplit::from_tokens(toks, 9), 10, 4, shape(1, 4, 0)), sl::Error);
}
