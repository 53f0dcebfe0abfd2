// prepare(): corpus -> clean/dedup -> train/val split by document -> tokenizer -> token shards +
// manifest.txt, in out_dir. Each stage writes its output atomically and is skipped when that
// output already exists, validates and matches the options, so an interrupted run resumes; a
// rebuilt stage removes the outputs of the stages after it. Documents of each split are stored in
// hash order (deterministic, sources mixed).
#pragma once
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "data/corpus_sources.h"
#include "data/manifest.h"

namespace sl::data {

struct PrepareOptions {
  std::string out_dir;  // e.g. data/cache/default
  CorpusOptions corpus;
  int vocab_size = 4096;  // BPE vocabulary including the 256 bytes and BOS
  bool byte_level = false;  // ignore vocab_size: bytes + BOS (257)
  double val_fraction = 0.01;  // share of documents (chosen by hash) in validation
  int64_t tokenizer_sample_bytes = 20'000'000;  // BPE is trained on this much training text
  int64_t shard_tokens = 64 << 20;  // tokens per shard file at most
};

// Called with the stage ("corpus", "tokenizer", "encode") and the fraction of it done.
using Progress = std::function<void(const std::string& stage, double fraction)>;

struct PrepareReport {
  Manifest manifest;
  std::map<std::string, double> stage_seconds;  // 0 for a stage skipped because its output was valid
  int64_t raw_documents = -1;  // documents before cleaning and de-duplication (-1: corpus stage skipped)
};

PrepareReport prepare(const PrepareOptions& opt, const Progress& progress = {});

// True when a document (by its text) belongs to the validation split.
bool is_validation(const std::string& text, double val_fraction);

// The documents of each split in the order prepare() stores them.
struct Splits {
  std::vector<const Document*> train, val;
};
Splits split_documents(const std::vector<Document>& docs, double val_fraction);

// The source ("brown", "kjv", ...) of each validation document of the data set prepared in
// `dir`, in the order of its shards: from its corpus.txt and the manifest's val_fraction.
std::vector<std::string> validation_sources(const std::string& dir);

}  // namespace sl::data
