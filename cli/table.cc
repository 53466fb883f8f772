#include "cli/table.h"

#include <algorithm>
#include <utility>

namespace det::cli {

Table::Table(std::vector<std::string> headers)
    : headers_(std::move(headers)), align_(headers_.size(), Align::kLeft) {}

void Table::SetAlign(size_t column, Align align) {
  if (column < align_.size()) align_[column] = align;
}

void Table::AddRow(std::vector<std::string> cells) {
  cells.resize(headers_.size());
  rows_.push_back(std::move(cells));
}

size_t DisplayWidth(const std::string& text) {
  size_t width = 0;
  for (unsigned char c : text) {
    // Continuation bytes (10xxxxxx) belong to the code point before them.
    if ((c & 0xC0) != 0x80) ++width;
  }
  return width;
}

void Table::Print(std::ostream& out) const {
  const size_t n = headers_.size();
  std::vector<size_t> width(n);
  for (size_t i = 0; i < n; ++i) width[i] = DisplayWidth(headers_[i]);
  for (const auto& row : rows_) {
    for (size_t i = 0; i < n; ++i) {
      width[i] = std::max(width[i], DisplayWidth(row[i]));
    }
  }

  auto print_line = [&](const std::vector<std::string>& cells) {
    std::string line;
    for (size_t i = 0; i < n; ++i) {
      const size_t pad = width[i] - DisplayWidth(cells[i]);
      if (i > 0) line += "  ";
      if (align_[i] == Align::kRight) {
        line.append(pad, ' ');
        line += cells[i];
      } else {
        line += cells[i];
        line.append(pad, ' ');
      }
    }
    // Trailing padding of the last (left-aligned) columns helps nobody.
    line.erase(line.find_last_not_of(' ') + 1);
    out << line << '\n';
  };

  print_line(headers_);
  for (const auto& row : rows_) print_line(row);
}

void PrintFields(std::ostream& out,
                 const std::vector<std::pair<std::string, std::string>>& fields,
                 int indent) {
  size_t width = 0;
  for (const auto& [key, value] : fields) {
    if (!value.empty()) width = std::max(width, DisplayWidth(key) + 1);
  }
  for (const auto& [key, value] : fields) {
    if (value.empty()) continue;
    out << std::string(indent, ' ') << key << ':'
        << std::string(width - DisplayWidth(key) - 1 + 2, ' ') << value << '\n';
  }
}

}  // namespace det::cli
