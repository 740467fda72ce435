// RFC 4180 reader: quoting, line ends, BOM, limits and junk.

#include "carehub/adapters/csv/csv_reader.h"

#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

namespace carehub::adapters::csv {
namespace {

std::vector<CsvRecord> ReadAll(const std::string& text, CsvLimits limits = {}) {
  std::istringstream in(text);
  CsvReader reader(&in, limits);
  std::vector<CsvRecord> records;
  CsvRecord record;
  while (reader.Next(&record)) {
    records.push_back(record);
  }
  return records;
}

TEST(CsvReaderTest, QuotedFieldsWithCommasQuotesAndNewlines) {
  auto records = ReadAll("a,b,c\r\n\"x, y\",\"say \"\"hi\"\"\",\"two\nlines\"\r\nlast,,\n");
  ASSERT_EQ(records.size(), 3u);
  EXPECT_EQ(records[1].fields, (std::vector<std::string>{"x, y", "say \"hi\"", "two\nlines"}));
  EXPECT_TRUE(records[1].error.empty());
  EXPECT_EQ(records[1].line, 2u);
  EXPECT_EQ(records[2].line, 4u);  // the quoted newline counts as a line
  EXPECT_EQ(records[2].fields, (std::vector<std::string>{"last", "", ""}));
}

TEST(CsvReaderTest, ByteOrderMarkAndBlankLinesAreSkipped) {
  auto records = ReadAll("\xEF\xBB\xBFid,name\n\n1,x\n\r\n");
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[0].fields[0], "id");
  EXPECT_EQ(records[1].line, 3u);
}

TEST(CsvReaderTest, LastRecordWithoutLineEnd) {
  auto records = ReadAll("a,b\n1,2");
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[1].fields, (std::vector<std::string>{"1", "2"}));
}

TEST(CsvReaderTest, UnterminatedQuoteIsReported) {
  auto records = ReadAll("a,b\n1,\"never closed\n2,3\n");
  ASSERT_EQ(records.size(), 2u);
  EXPECT_NE(records[1].error.find("unterminated"), std::string::npos);
  EXPECT_EQ(records[1].line, 2u);
}

TEST(CsvReaderTest, TooManyColumnsIsReportedAndReadingContinues) {
  std::string wide(1'000'000 * 2, ',');  // a million columns
  auto records = ReadAll("a,b\n" + wide + "\nok,row\n", CsvLimits{256, 64 * 1024 * 1024});
  ASSERT_EQ(records.size(), 3u);
  EXPECT_NE(records[1].error.find("more than 256 columns"), std::string::npos);
  EXPECT_TRUE(records[1].fields.empty());
  EXPECT_EQ(records[2].fields, (std::vector<std::string>{"ok", "row"}));
}

TEST(CsvReaderTest, LongRowIsReportedAndReadingContinues) {
  auto records = ReadAll("a\n" + std::string(5000, 'x') + "\nshort\n", CsvLimits{256, 1000});
  ASSERT_EQ(records.size(), 3u);
  EXPECT_NE(records[1].error.find("longer than 1000 bytes"), std::string::npos);
  EXPECT_EQ(records[2].fields[0], "short");
}

TEST(CsvReaderTest, BinaryJunkIsReported) {
  std::string junk = "a,b\n";
  junk += std::string("\x00\xff\xfe,\x01", 5);
  junk += "\n";
  auto records = ReadAll(junk);
  ASSERT_EQ(records.size(), 2u);
  EXPECT_FALSE(records[1].error.empty());
  EXPECT_EQ(records[1].error_field, 0);
}

TEST(CsvReaderTest, StrayQuotesAreErrors) {
  auto records = ReadAll("a\nab\"c\n\"ab\"c\n");
  ASSERT_EQ(records.size(), 3u);
  EXPECT_NE(records[1].error.find("quote inside"), std::string::npos);
  EXPECT_NE(records[2].error.find("after a closing quote"), std::string::npos);
}

TEST(CsvReaderTest, Utf8Check) {
  EXPECT_TRUE(IsCleanUtf8("Zoë Ñ €"));
  EXPECT_FALSE(IsCleanUtf8(std::string("\xc3", 1)));
  EXPECT_FALSE(IsCleanUtf8(std::string("a\0b", 3)));
  EXPECT_FALSE(IsCleanUtf8("\xed\xa0\x80"));  // a surrogate
}

}  // namespace
}  // namespace carehub::adapters::csv
