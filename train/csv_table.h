// A table of text cells written as and read from CSV (RFC 4180 quoting: a cell holding a comma, a
// quote or a line break is quoted, its quotes doubled): the sweep summaries and per-run curves.
#pragma once
#include <string>
#include <vector>

namespace sl::train {

struct CsvTable {
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;  // each as long as the header
  // The index of column `name`, or -1.
  int column(const std::string& name) const;
  // The cell of `row` in column `name`; empty if the table has no such column.
  std::string cell(size_t row, const std::string& name) const;
};

std::string to_csv(const CsvTable& t);
// Parses CSV text; rows shorter than the header are padded with empty cells, longer ones are an
// error naming `what` and the line.
CsvTable parse_csv(const std::string& text, const std::string& what);
// The file at `path`; an empty table if it does not exist.
CsvTable read_csv(const std::string& path);

}  // namespace sl::train
