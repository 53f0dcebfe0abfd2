// Cleaning of raw documents: whitespace normalised, non-text dropped, exact duplicates removed.
#pragma once
#include <string>
#include <vector>

#include "data/corpus_sources.h"

namespace sl::data {

// CRLF/CR -> LF, tabs -> spaces, control characters dropped, runs of spaces collapsed, trailing
// spaces removed, at most one blank line in a row, no leading/trailing blank lines.
std::string normalize_whitespace(const std::string& text);

// Valid UTF-8 with no NUL and mostly printable characters (binary or mis-encoded data is not).
bool is_text(const std::string& text);

// Normalises every document, drops empty/short (< min_bytes) and non-text ones, and keeps only the
// first of documents with identical text (by hash). Order is preserved.
std::vector<Document> clean_and_dedup(std::vector<Document> docs, size_t min_bytes = 64);

}  // namespace sl::data
