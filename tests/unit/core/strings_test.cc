#include "carehub/core/strings.h"

#include <gtest/gtest.h>

namespace carehub {
namespace {

TEST(TrimTest, SpaceTabKeepsLineEndings) {
  EXPECT_EQ(Trim("  RXK01\t ", kSpaceTab), "RXK01");
  EXPECT_EQ(Trim("RXK01\r", kSpaceTab), "RXK01\r");
  EXPECT_EQ(Trim("\na b\n", kSpaceTab), "\na b\n");
  EXPECT_EQ(Trim(" a  b ", kSpaceTab), "a  b");
}

TEST(TrimTest, SpaceTabCrLfDropsLineEndings) {
  EXPECT_EQ(Trim("\r\n  RXK01 \t\r\n", kSpaceTabCrLf), "RXK01");
  EXPECT_EQ(Trim("a\rb", kSpaceTabCrLf), "a\rb");
}

TEST(TrimTest, AllTrimmedOrEmptyIsEmpty) {
  EXPECT_EQ(Trim("", kSpaceTab), "");
  EXPECT_EQ(Trim(" \t \t", kSpaceTab), "");
  EXPECT_EQ(Trim("\r\n", kSpaceTabCrLf), "");
  EXPECT_EQ(Trim("x", kSpaceTab), "x");
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
