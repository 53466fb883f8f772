// Aligned text tables for the det command's human output.
//
// Columns are separated by two spaces, headers are upper case, and no line
// ends in spaces, so the output reads well and still splits with awk.
// Widths count UTF-8 code points, not bytes, so names with accents align.
#ifndef DET_CLI_TABLE_H_
#define DET_CLI_TABLE_H_

#include <ostream>
#include <string>
#include <utility>
#include <vector>

namespace det::cli {

class Table {
 public:
  enum class Align { kLeft, kRight };

  // One column per header. Headers are printed as given.
  explicit Table(std::vector<std::string> headers);

  // Right-aligns column `column` (numbers read better that way).
  void SetAlign(size_t column, Align align);

  // Adds a row. A short row is padded with empty cells; extra cells are an
  // error of the caller and are dropped.
  void AddRow(std::vector<std::string> cells);

  size_t num_rows() const { return rows_.size(); }

  // Writes the header line and every row, each ending in '\n'.
  void Print(std::ostream& out) const;

 private:
  std::vector<std::string> headers_;
  std::vector<Align> align_;
  std::vector<std::vector<std::string>> rows_;
};

// Writes "Key:  value" lines with the values aligned, each line indented by
// `indent` spaces. Fields with an empty value are left out.
void PrintFields(std::ostream& out,
                 const std::vector<std::pair<std::string, std::string>>& fields,
                 int indent = 2);

// Display width of UTF-8 text: the number of code points.
size_t DisplayWidth(const std::string& text);

}  // namespace det::cli

#endif  // DET_CLI_TABLE_H_
