// corpus.txt: the cleaned, de-duplicated documents that prepare() tokenizes, one record per doc:
//   sinklab-corpus 1 <origin: the sources and options it was made from>
//   doc <source> <bytes> <name...>\n<text>\n        (repeated)
//   end <documents> <fnv1a64 hex of all texts>
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "data/corpus_sources.h"

namespace sl::data {

void write_corpus(const std::string& path, const std::string& origin, const std::vector<Document>& docs);
// The documents, or nothing when the file is missing, has another origin, or is damaged.
std::optional<std::vector<Document>> read_corpus(const std::string& path, const std::string& origin);
// The origin its header names ("" when the file is missing or is not a corpus file).
std::string read_corpus_origin(const std::string& path);

}  // namespace sl::data
