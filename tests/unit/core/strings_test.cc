#include "carehub/core/strings.h"

#include <gtest/gtest.h>

#include <string_view>

namespace carehub {
namespace {

struct TrimCase {
  const char* text;
  std::string_view chars;
  const char* want;
};

// kSpaceTab keeps line endings (its callers' readers removed them already); kSpaceTabCrLf drops
// them; bytes inside the text always stay.
TEST(TrimTest, KnownAnswers) {
  for (const TrimCase& c : {
           TrimCase{"  RXK01\t ", kSpaceTab, "RXK01"},
           TrimCase{"RXK01\r", kSpaceTab, "RXK01\r"},
           TrimCase{"\na b\n", kSpaceTab, "\na b\n"},
           TrimCase{" a  b ", kSpaceTab, "a  b"},
           TrimCase{"\r\n  RXK01 \t\r\n", kSpaceTabCrLf, "RXK01"},
           TrimCase{"a\rb", kSpaceTabCrLf, "a\rb"},
           TrimCase{"", kSpaceTab, ""},
           TrimCase{" \t \t", kSpaceTab, ""},
           TrimCase{"\r\n", kSpaceTabCrLf, ""},
           TrimCase{"x", kSpaceTab, "x"},
       }) {
    EXPECT_EQ(Trim(c.text, c.chars), c.want) << "'" << c.text << "'";
  }
}

TEST(RemoveCharsTest, RemovesEveryOccurrence) {
  EXPECT_EQ(RemoveChars("943 476-5919", " -"), "9434765919");
  EXPECT_EQ(RemoveChars("- -", " -"), "");
  EXPECT_EQ(RemoveChars("abc", ""), "abc");
}

TEST(AsciiCaseTest, FoldsOnlyAscii) {
  EXPECT_EQ(AsciiLower("NHS_Number-1"), "nhs_number-1");
  EXPECT_EQ(AsciiUpper("a01 rxk"), "A01 RXK");
  // UTF-8 bytes of "É" (0xC3 0x89) are left alone.
  EXPECT_EQ(AsciiLower("\xC3\x89T"), "\xC3\x89t");
  EXPECT_EQ(AsciiUpper("\xC3\xA9t"), "\xC3\xA9T");
}

}  // namespace
}  // namespace carehub
