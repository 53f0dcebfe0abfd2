#include "data/corpus_file.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "data/files.h"

namespace sl::data {

static const std::string kMagic = "sinklab-corpus 1 ";

void write_corpus(const std::string& path, const std::string& origin, const std::vector<Document>& docs) {
  std::string out = kMagic + origin + "\n";
  uint64_t h = fnv1a64("", 0);
  for (const auto& d : docs) {
    out += "doc " + d.source + " " + std::to_string(d.text.size()) + " " + d.name + "\n" + d.text + "\n";
    h = fnv1a64(d.text.data(), d.text.size(), h);
  }
  std::ostringstream end;
  end << "end " << docs.size() << ' ' << std::hex << h << "\n";
  write_file_atomic(path, out + end.str());
}

std::string read_corpus_origin(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  if (!std::getline(in, line) || line.compare(0, kMagic.size(), kMagic) != 0) return "";
  return line.substr(kMagic.size());
}

std::optional<std::vector<Document>> read_corpus(const std::string& path, const std::string& origin) {
  if (!std::filesystem::exists(path)) return std::nullopt;
  std::string all = read_file(path);
  std::string header = kMagic + origin + "\n";
  if (all.compare(0, header.size(), header) != 0) return std::nullopt;
  std::vector<Document> docs;
  uint64_t h = fnv1a64("", 0);
  size_t pos = header.size();
  while (pos < all.size() && all.compare(pos, 4, "doc ") == 0) {
    size_t eol = all.find('\n', pos);
    if (eol == std::string::npos) return std::nullopt;
    std::istringstream ls(all.substr(pos + 4, eol - pos - 4));
    Document d;
    size_t bytes;
    if (!(ls >> d.source >> bytes)) return std::nullopt;
    std::getline(ls >> std::ws, d.name);
    if (eol + 1 + bytes + 1 > all.size()) return std::nullopt;
    d.text = all.substr(eol + 1, bytes);
    h = fnv1a64(d.text.data(), d.text.size(), h);
    pos = eol + 1 + bytes + 1;
    docs.push_back(std::move(d));
  }
  std::ostringstream end;
  end << "end " << docs.size() << ' ' << std::hex << h << "\n";
  if (all.compare(pos, std::string::npos, end.str()) != 0) return std::nullopt;
  return docs;
}

}  // namespace sl::data
