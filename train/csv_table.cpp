#include "train/csv_table.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "engine/error.h"
#include "train/sweep.h"

namespace sl::train {

int CsvTable::column(const std::string& name) const {
  for (size_t i = 0; i < header.size(); ++i)
    if (header[i] == name) return (int)i;
  return -1;
}

std::string CsvTable::cell(size_t row, const std::string& name) const {
  const int c = column(name);
  return c < 0 ? "" : rows.at(row).at((size_t)c);
}

namespace {

std::string quoted(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

std::string line(const std::vector<std::string>& cells) {
  std::vector<std::string> q;
  for (auto& c : cells) q.push_back(quoted(c));
  return join(q, ",") + "\n";
}

}  // namespace

std::string to_csv(const CsvTable& t) {
  std::string s = line(t.header);
  for (auto& r : t.rows) s += line(r);
  return s;
}

CsvTable parse_csv(const std::string& text, const std::string& what) {
  std::vector<std::vector<std::string>> records;
  std::vector<std::string> record;
  std::string cell;
  bool in_quotes = false, any = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_quotes) {
      if (c == '"' && i + 1 < text.size() && text[i + 1] == '"') cell += '"', ++i;
      else if (c == '"') in_quotes = false;
      else cell += c;
    } else if (c == '"') {
      in_quotes = any = true;
    } else if (c == ',') {
      record.push_back(cell), cell.clear(), any = true;
    } else if (c == '\n' || c == '\r') {
      if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
      if (any || !cell.empty()) record.push_back(cell);
      if (!record.empty()) records.push_back(record);
      record.clear(), cell.clear(), any = false;
    } else {
      cell += c, any = true;
    }
  }
  SL_CHECK(!in_quotes, what + ": a quoted cell is not closed");
  if (any || !cell.empty()) record.push_back(cell);
  if (!record.empty()) records.push_back(record);
  CsvTable t;
  if (records.empty()) return t;
  t.header = records.front();
  for (size_t r = 1; r < records.size(); ++r) {
    SL_CHECK(records[r].size() <= t.header.size(), what + ": line " + std::to_string(r + 1) + " has " +
                                                       std::to_string(records[r].size()) + " cells, the header " +
                                                       std::to_string(t.header.size()));
    records[r].resize(t.header.size());
    t.rows.push_back(records[r]);
  }
  return t;
}

CsvTable read_csv(const std::string& path) {
  if (!std::filesystem::exists(path)) return {};
  std::ifstream in(path, std::ios::binary);
  SL_CHECK(in.good(), "cannot read '" + path + "'");
  std::stringstream s;
  s << in.rdbuf();
  return parse_csv(s.str(), path);
}

}  // namespace sl::train
