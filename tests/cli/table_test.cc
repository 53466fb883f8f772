#include "cli/table.h"

#include <sstream>

#include "gtest/gtest.h"

namespace det::cli {
namespace {

TEST(TableTest, AlignsColumnsAndTrimsTrailingSpaces) {
  Table table({"ID", "NAME", "STATE"});
  table.AddRow({"1", "short", "ACTIVE"});
  table.AddRow({"12", "a-much-longer-name", "COMPLETED"});
  std::ostringstream out;
  table.Print(out);
  EXPECT_EQ(out.str(),
            "ID  NAME                STATE\n"
            "1   short               ACTIVE\n"
            "12  a-much-longer-name  COMPLETED\n");
}

TEST(TableTest, RightAlignedColumns) {
  Table table({"ID", "BEST", "NAME"});
  table.SetAlign(0, Table::Align::kRight);
  table.SetAlign(1, Table::Align::kRight);
  table.AddRow({"7", "0.71", "x"});
  table.AddRow({"123", "0.5", "y"});
  std::ostringstream out;
  table.Print(out);
  EXPECT_EQ(out.str(),
            " ID  BEST  NAME\n"
            "  7  0.71  x\n"
            "123   0.5  y\n");
}

TEST(TableTest, ShortRowsArePaddedAndEmptyTableHasHeader) {
  Table empty({"A", "B"});
  std::ostringstream header_only;
  empty.Print(header_only);
  EXPECT_EQ(header_only.str(), "A  B\n");

  Table table({"A", "B", "C"});
  table.AddRow({"x"});
  EXPECT_EQ(table.num_rows(), 1u);
  std::ostringstream out;
  table.Print(out);
  EXPECT_EQ(out.str(), "A  B  C\nx\n");
}

TEST(TableTest, WidthCountsCodePointsNotBytes) {
  EXPECT_EQ(DisplayWidth("abc"), 3u);
  EXPECT_EQ(DisplayWidth("d\xC3\xA9j\xC3\xA0"), 4u);  // "déjà"
  Table table({"NAME", "X"});
  table.AddRow({"d\xC3\xA9j\xC3\xA0", "1"});
  table.AddRow({"abcd", "2"});
  std::ostringstream out;
  table.Print(out);
  EXPECT_EQ(out.str(),
            "NAME  X\n"
            "d\xC3\xA9j\xC3\xA0  1\n"
            "abcd  2\n");
}

TEST(TableTest, PrintFieldsAlignsValuesAndSkipsEmptyOnes) {
  std::ostringstream out;
  PrintFields(out,
              {{"State", "ACTIVE"}, {"Message", ""}, {"Progress", "10.0%"}});
  EXPECT_EQ(out.str(),
            "  State:     ACTIVE\n"
            "  Progress:  10.0%\n");
}

}  // namespace
}  // namespace det::cli
