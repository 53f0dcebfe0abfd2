// Seeded mutation fuzzing of every reader of files that a crash, a full disk or a bad copy can
// damage: token shards with their manifest, IDX image/label files (raw and gzip), tokenizer files
// and checkpoints. Each valid file is mutated (bit flips, interesting integers, truncation,
// splices with another valid file, insertions, garbage) and read back: the reader must either
// succeed (then the result must be usable without crashing) or throw sl::Error naming the file.
// Any other exception, a crash or a hang fails the test. The loops are seeded, so a failure
// reproduces; the counts keep the whole test at a few seconds.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>

#include "data/files.h"
#include "data/idx.h"
#include "data/manifest.h"
#include "data/token_stream.h"
#include "data/tokenizer.h"
#include "engine/checkpoint.h"
#include "engine/error.h"

namespace fs = std::filesystem;

namespace {

struct FuzzDir {
  fs::path path;
  explicit FuzzDir(const std::string& name)
      // /dev/shm: thousands of rewrites of small files cost seconds on a disk with discard.
      : path((fs::is_directory("/dev/shm") ? fs::path("/dev/shm") : fs::temp_directory_path()) /
             ("sl_fuzz_" + std::to_string(getpid()) + "_" + name)) {
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~FuzzDir() { fs::remove_all(path); }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

std::string read_bytes(const std::string& path) { return sl::data::read_file(path); }

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

// One random corruption of `b`; `other` is another valid file of the same kind to splice from.
std::string mutate(std::string b, const std::string& other, std::mt19937_64& rng) {
  auto pick = [&](size_t n) { return n == 0 ? 0 : (size_t)(rng() % n); };
  const int kind = (int)(rng() % 7);
  if (b.empty()) return std::string(1 + pick(64), char(rng()));
  switch (kind) {
    case 0: {  // a few bit flips
      for (int k = 1 + (int)pick(8); k > 0; --k) b[pick(b.size())] ^= char(1u << pick(8));
      break;
    }
    case 1: {  // an interesting little- or big-endian integer over 1, 2, 4 or 8 bytes
      static const uint64_t interesting[] = {0, 1, 0x7f, 0x80, 0xff, 0xffff, 0x7fffffff, 0x80000000,
                                             0xffffffff, 0x100000000ull, 0x7fffffffffffffffull, ~0ull};
      uint64_t v = interesting[pick(std::size(interesting))];
      size_t width = size_t(1) << pick(4), at = pick(b.size());
      bool big = rng() & 1;
      for (size_t i = 0; i < width && at + i < b.size(); ++i)
        b[at + i] = char(v >> (8 * (big ? width - 1 - i : i)));
      break;
    }
    case 2: b.resize(pick(b.size())); break;  // truncation
    case 3: {  // splice: a range of the other file over a range of this one
      size_t from = pick(other.size()), n = pick(other.size() - from + 1), at = pick(b.size());
      b.replace(at, std::min(n, b.size() - at), other.substr(from, n));
      break;
    }
    case 4: {  // duplicated range
      size_t from = pick(b.size()), n = pick(b.size() - from + 1);
      b.insert(pick(b.size()), b.substr(from, n));
      break;
    }
    case 5: {  // random bytes over a range
      size_t at = pick(b.size()), n = 1 + pick(std::min<size_t>(64, b.size() - at));
      for (size_t i = 0; i < n; ++i) b[at + i] = char(rng());
      break;
    }
    default: {  // garbage appended or a range removed
      if (rng() & 1) b += std::string(1 + pick(256), char(rng()));
      else b.erase(pick(b.size()), 1 + pick(32));
    }
  }
  return b;
}

struct FuzzResult {
  int inputs = 0, accepted = 0, rejected = 0;
};

// Runs `read` on `count` mutations of one of `files` (restoring it afterwards). A rejection must
// be an sl::Error naming a file of the set (`names`); anything else fails the test.
FuzzResult fuzz(const std::string& reader, const std::vector<std::string>& files, const std::vector<std::string>& names,
                int count, uint64_t seed, const std::function<void()>& read) {
  std::vector<std::string> originals;
  for (auto& f : files) originals.push_back(read_bytes(f));
  std::mt19937_64 rng(seed);
  FuzzResult r;
  for (int i = 0; i < count; ++i) {
    const size_t target = rng() % files.size();
    const std::string& other = originals[rng() % originals.size()];
    std::string bytes = mutate(originals[target], other, rng);
    for (int extra = (int)(rng() % 4 == 0); extra > 0; --extra) bytes = mutate(bytes, other, rng);
    write_bytes(files[target], bytes);
    ++r.inputs;
    try {
      read();
      ++r.accepted;
    } catch (const sl::Error& e) {
      ++r.rejected;
      std::string msg = e.what();
      bool named = std::any_of(names.begin(), names.end(), [&](auto& n) { return msg.find(n) != std::string::npos; });
      if (!named) FAIL(reader << " input " << i << " (seed " << seed << "): error names no file: " << msg);
    } catch (const std::exception& e) {
      FAIL(reader << " input " << i << " (seed " << seed << ", mutating " << files[target]
                  << "): not an sl::Error but " << typeid(e).name() << ": " << e.what());
    }
    write_bytes(files[target], originals[target]);
  }
  std::printf("reader fuzz: %-26s %5d inputs, %5d rejected with sl::Error naming the file, %5d read fine\n",
              reader.c_str(), r.inputs, r.rejected, r.accepted);
  return r;
}

}  // namespace

TEST_CASE("fuzz: token shards and their manifest", "[fuzz][reliability]") {
  FuzzDir dir("shards");
  const std::string d = dir.path.string();
  sl::data::Manifest m;
  m.tokenizer = "tokenizer.txt";
  m.vocab_size = 300;
  m.bos = 299;
  m.token_bytes = 2;
  std::vector<int32_t> a, b, v;
  for (int i = 0; i < 200; ++i) a.push_back(i % 37 == 0 ? 299 : (i * 7) % 299);
  for (int i = 0; i < 150; ++i) b.push_back(i % 23 == 0 ? 299 : (i * 13) % 299);
  for (int i = 0; i < 90; ++i) v.push_back(i % 30 == 0 ? 299 : (i * 5) % 299);
  m.shards.push_back(sl::data::write_shard(d, "train_000.bin", "train", a, 2));
  m.shards.push_back(sl::data::write_shard(d, "train_001.bin", "train", b, 2));
  m.shards.push_back(sl::data::write_shard(d, "val_000.bin", "val", v, 2));
  m.stats["docs"] = "12";
  sl::data::write_manifest(dir.file("manifest.txt"), m);
  REQUIRE(sl::data::TokenStream::open(d).train().size() == 350);

  std::vector<std::string> files = {dir.file("manifest.txt"), dir.file("train_000.bin"), dir.file("train_001.bin"),
                                    dir.file("val_000.bin")};
  auto r = fuzz("token shards + manifest", files, {d}, 6000, 101, [&] {
    sl::data::TokenStream s = sl::data::TokenStream::open(d, true);
    int64_t sum = 0;  // touch every token of an accepted set
    for (const sl::data::TokenSplit* split : {&s.train(), &s.val()})
      for (int64_t i = 0; i < split->size(); ++i) sum += (*split)[i];
    for (int64_t i = 0; i < s.train().size(); ++i)
      if (s.train()[i] < 0 || s.train()[i] >= s.manifest().vocab_size) throw std::logic_error("token out of range");
    (void)sum;
  });
  CHECK(r.rejected > r.inputs / 2);  // most corruptions are detected, not read as data
}

TEST_CASE("fuzz: IDX image and label files, raw and gzip", "[fuzz][reliability]") {
  FuzzDir dir("idx");
  auto be32 = [](uint32_t x) { return std::string{char(x >> 24), char(x >> 16), char(x >> 8), char(x)}; };
  std::string pixels, labels;
  for (int i = 0; i < 5 * 9 * 7; ++i) pixels.push_back(char(i * 11));
  for (int i = 0; i < 5; ++i) labels.push_back(char(i * 2));
  write_bytes(dir.file("images"), be32(0x803) + be32(5) + be32(9) + be32(7) + pixels);
  write_bytes(dir.file("labels"), be32(0x801) + be32(5) + labels);
  for (const char* f : {"images", "labels"})
    write_bytes(dir.file(std::string(f) + ".gz"), sl::data::command_output("gzip -c -n " + dir.file(f)));
  REQUIRE(sl::data::read_idx(dir.file("images.gz"), dir.file("labels.gz")).count == 5);

  for (bool gz : {false, true}) {
    const std::string images = dir.file(gz ? "images.gz" : "images"), lab = dir.file(gz ? "labels.gz" : "labels");
    auto r = fuzz(gz ? "IDX (gzip)" : "IDX (raw)", {images, lab}, {images, lab}, 4000, gz ? 203 : 202, [&] {
      sl::data::ImageSet s = sl::data::read_idx(images, lab);
      if ((int64_t)s.images.size() != s.count * s.rows * s.cols || (int64_t)s.labels.size() != s.count)
        throw std::logic_error("inconsistent image set");
    });
    CHECK(r.rejected > r.inputs / 2);
  }
}

TEST_CASE("fuzz: tokenizer files", "[fuzz][reliability]") {
  FuzzDir dir("tokenizer");
  std::string text;
  for (int i = 0; i < 40; ++i) text += "the quick brown fox jumps over the lazy dog " + std::to_string(i * 37) + ". ";
  sl::data::Tokenizer::train(text, 300).save(dir.file("tok_a.txt"));
  sl::data::Tokenizer::train(text.substr(0, 700), 280).save(dir.file("tok_b.txt"));
  const std::string path = dir.file("tok_a.txt");
  auto r = fuzz("tokenizer", {path}, {path}, 5000, 303, [&] {
    // An accepted tokenizer must round-trip text (merges refer only to earlier ids).
    sl::data::Tokenizer t = sl::data::Tokenizer::load(path);
    const std::string probe = "the lazy fox, 1234 jumps!";
    if (t.decode(t.encode(probe)) != probe) throw std::logic_error("tokenizer does not round-trip");
  });
  CHECK(r.rejected > r.inputs / 2);
}

TEST_CASE("fuzz: checkpoints", "[fuzz][reliability]") {
  FuzzDir dir("checkpoint");
  auto make = [](float scale) {
    sl::Checkpoint ck;
    ck.tensors["param/blocks.0.attn.wq"] = sl::Tensor::empty({5, 7});
    ck.tensors["param/wte"] = sl::Tensor::empty({3});
    ck.tensors["optim/m"] = sl::Tensor::empty({});
    for (auto& [n, t] : ck.tensors)
      for (int64_t i = 0; i < t.numel(); ++i) t.data()[i] = scale * (float)i - 1.5f;
    ck.ints["step"] = {42};
    ck.ints["data_state"] = {1, 2, 3, (int64_t)scale};
    ck.strings["config"] = "model:\n  d_model: 32\n";
    return ck;
  };
  sl::save_checkpoint(dir.file("a.h5"), make(0.25f));
  sl::save_checkpoint(dir.file("b.h5"), make(2.f));
  const std::string path = dir.file("a.h5");
  const sl::Checkpoint want = sl::load_checkpoint(path);
  auto r = fuzz("checkpoint", {path}, {path}, 6000, 404, [&] {
    // Every stored byte is covered by a checksum: what loads must be exactly what was saved.
    sl::Checkpoint ck = sl::load_checkpoint(path);
    bool same = ck.ints == want.ints && ck.strings == want.strings && ck.tensors.size() == want.tensors.size();
    for (auto& [n, t] : want.tensors) {
      auto it = ck.tensors.find(n);
      same = same && it != ck.tensors.end() && it->second.shape() == t.shape() &&
             std::equal(t.data(), t.data() + t.numel(), it->second.data());
    }
    if (!same) throw std::logic_error("a corrupted checkpoint loaded with different contents");
  });
  CHECK(r.rejected > r.inputs / 2);
}
