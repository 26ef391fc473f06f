// Plain-text tables for mqctl's human output: a header row and aligned columns, numbers right-aligned, two spaces
// between columns, no borders (like `kubectl get` or `ps`), so the output stays easy to read and to grep.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace mqctl {

class Table {
 public:
  enum class Align { left, right };
  struct Column {
    std::string title;
    Align align = Align::left;
  };

  explicit Table(std::vector<Column> columns) : columns_(std::move(columns)) {}
  // REQUIRES: cells.size() == the number of columns.
  void add_row(std::vector<std::string> cells) { rows_.push_back(std::move(cells)); }
  bool empty() const { return rows_.empty(); }

  // The header and rows, each line ending in '\n'. Trailing blanks are trimmed.
  std::string render() const;

 private:
  std::vector<Column> columns_;
  std::vector<std::vector<std::string>> rows_;
};

}  // namespace mqctl
