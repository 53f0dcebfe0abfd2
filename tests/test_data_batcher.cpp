#include <catch2/catch.hpp>

#include "data/batcher.h"
#include "engine/error.h"

using namespace sl::data;

namespace {

// A packed stream of documents: BOS = 50, document d holds tokens d*10 + 0..len-1 (mod 50).
TokenSplit packed_stream(int docs = 37) {
  std::vector<int32_t> t;
  for (int d = 0; d < docs; ++d) {
    t.push_back(50);
    for (int i = 0; i < 5 + (d * 7) % 23; ++i) t.push_back((d * 10 + i) % 50);
  }
  return TokenSplit::from_tokens(t, 50);
}

BatcherOptions options(uint64_t seed) {
  BatcherOptions o;
  o.batch = 3;
  o.seq_len = 11;
  o.seed = seed;
  return o;
}

}  // namespace

TEST_CASE("batcher is deterministic and resumes identically from its state", "[data][batcher]") {
  TokenSplit s = packed_stream();
  Batcher a(s, 51, options(7)), b(s, 51, options(7)), c(s, 51, options(8));
  auto a1 = a.next_batch();
  REQUIRE(a1.size() == 3 * 12);
  REQUIRE(a1 == b.next_batch());
  REQUIRE(a1 != c.next_batch());
  // Every row is a contiguous window of the stream.
  for (int r = 0; r < 3; ++r) {
    bool found = false;
    for (int64_t st = 0; st + 12 <= s.size() && !found; ++st) {
      bool same = true;
      for (int j = 0; j < 12; ++j) same = same && s[st + j] == a1[r * 12 + j];
      found = same;
    }
    REQUIRE(found);
  }
  a.next_batch();
  auto saved = a.state();
  REQUIRE(saved.size() == 5);
  REQUIRE(saved[4] == 2);
  std::vector<std::vector<int32_t>> expected;
  for (int i = 0; i < 4; ++i) expected.push_back(a.next_batch());
  Batcher resumed(s, 51, options(123));  // a different seed: the state overrides it
  resumed.set_state(saved);
  for (int i = 0; i < 4; ++i) REQUIRE(resumed.next_batch() == expected[i]);
  REQUIRE(resumed.batches_drawn() == 6);
  REQUIRE_THROWS_AS(resumed.set_state({1, 2, 3}), sl::Error);
}

TEST_CASE("first-token modes and document-aligned windows", "[data][batcher]") {
  TokenSplit s = packed_stream();
  BatcherOptions o = options(3);
  o.first = FirstToken::bos;
  auto any = Batcher(s, 51, options(3)).next_batch();
  auto bos = Batcher(s, 51, o).next_batch();
  o.first = FirstToken::fixed;
  o.fixed_token = 17;
  auto fixed = Batcher(s, 51, o).next_batch();
  for (int r = 0; r < 3; ++r) {
    REQUIRE(bos[r * 12] == 50);
    REQUIRE(fixed[r * 12] == 17);
    for (int j = 1; j < 12; ++j) REQUIRE((bos[r * 12 + j] == any[r * 12 + j] && fixed[r * 12 + j] == any[r * 12 + j]));
  }
  o.fixed_token = 51;  // outside the vocabulary
  REQUIRE_THROWS_AS(Batcher(s, 51, o).next_batch(), sl::Error);

  BatcherOptions d = options(5);
  d.mode = WindowMode::doc_aligned;
  d.batch = 16;
  Batcher aligned(s, 51, d);
  for (int k = 0; k < 5; ++k) {
    auto batch = aligned.next_batch();
    for (int r = 0; r < 16; ++r) REQUIRE(batch[r * 12] == 50);
  }
}

TEST_CASE("token limit restricts windows to the first N tokens; probe batch is fixed", "[data][batcher]") {
  TokenSplit s = packed_stream();
  BatcherOptions o = options(9);
  o.max_tokens = 40;
  Batcher limited(s, 51, o);
  REQUIRE(limited.tokens_used() == 40);
  std::vector<int32_t> head(40);
  s.copy(0, 40, head.data());
  for (int k = 0; k < 20; ++k) {
    auto batch = limited.next_batch();
    for (int r = 0; r < 3; ++r) {
      bool inside = false;
      for (int st = 0; st + 12 <= 40 && !inside; ++st)
        inside = std::equal(batch.begin() + r * 12, batch.begin() + r * 12 + 12, head.begin() + st);
      REQUIRE(inside);
    }
  }
  o.max_tokens = 5;  // less than one window
  REQUIRE_THROWS_AS(Batcher(s, 51, o), sl::Error);

  BatchShape p;
  p.batch = 4;
  p.seq_len = 9;
  auto p1 = probe_batch(s, p), p2 = probe_batch(s, p);
  REQUIRE(p1 == p2);
  for (int r = 0; r < 4; ++r) REQUIRE(p1[r * 10] == 50);  // starts at documents
  REQUIRE(p1[0 * 10 + 1] != p1[1 * 10 + 1]);
  // Windows at chosen starts: evenly spaced among those with a whole window after them.
  const std::vector<int64_t> starts{0, 5, 10, s.size() - 3};
  auto w = windows_at(s, starts, p);
  REQUIRE(w.size() == 3 * 10);  // the last start has no whole window
  for (int r = 0; r < 3; ++r) REQUIRE(w[r * 10 + 1] == s[starts[r] + 1]);
  p.batch = 2;
  REQUIRE(windows_at(s, starts, p)[10 + 1] == s[starts[1] + 1]);
}
