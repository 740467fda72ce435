// HL7 v2 parser: separators, escapes, repetitions, segment endings, and arbitrary junk.

#include <gtest/gtest.h>

#include <random>
#include <string>

#include "carehub/adapters/hl7/datetime.h"
#include "carehub/adapters/hl7/message.h"
#include "carehub/core/validation.h"

namespace carehub::adapters::hl7 {
namespace {

constexpr const char* kAdt =
    "MSH|^~\\&|PAS|RXK|CAREHUB|HUB|20240315103000||ADT^A01^ADT_A01|MSG0001|P|2.5.1\r"
    "EVN|A01|20240315102900\r"
    "PID|1||9434765919^^^NHS^NH~A123456^^^RXK^MR||SMITH^JOHN^A^^MR||19800101|M|||"
    "1 HIGH STREET^^LEEDS^^LS1 4AP^GBR^H\r"
    "PV1|1|I|WARD12^B3^4|||||||300|||||||||V000123\r";

Message ParseOrDie(std::string_view raw) {
  Result<Message> parsed = Message::Parse(raw);
  EXPECT_TRUE(parsed.ok()) << parsed.status().ToString();
  return std::move(parsed).value();
}

TEST(Hl7ParserTest, ReadsFieldsComponentsAndRepetitions) {
  Message msg = ParseOrDie(kAdt);
  EXPECT_EQ(msg.SegmentCount(), 4u);
  EXPECT_EQ(msg.MessageType(), "ADT");
  EXPECT_EQ(msg.TriggerEvent(), "A01");
  EXPECT_EQ(msg.ControlId(), "MSG0001");
  EXPECT_EQ(msg.Version(), "2.5.1");
  EXPECT_EQ(msg.Get("MSH", 1), "|");
  EXPECT_EQ(msg.Get("MSH", 2), "^~\\&");
  EXPECT_EQ(msg.Get("MSH", 3), "PAS");
  EXPECT_EQ(msg.Get("MSH", 9, 0, 3), "ADT_A01");
  EXPECT_EQ(msg.Get("PID", 3, 0, 1), "9434765919");
  EXPECT_EQ(msg.Get("PID", 3, 0, 4), "NHS");
  EXPECT_EQ(msg.Get("PID", 3, 1, 1), "A123456");
  EXPECT_EQ(msg.Get("PID", 3, 1, 5), "MR");
  EXPECT_EQ(msg.Get("PID", 3, 2, 1), "");  // no third repetition
  EXPECT_EQ(msg.FindAll("PID").front().RepetitionCount(3), 2);
  EXPECT_EQ(msg.Get("PID", 5, 0, 2), "JOHN");
  EXPECT_EQ(msg.Get("PID", 11, 0, 5), "LS1 4AP");
  EXPECT_EQ(msg.Get("PV1", 3, 0, 3), "4");
  EXPECT_EQ(msg.Get("PV1", 19), "V000123");
}

TEST(Hl7ParserTest, EmptyAndMissingFieldsReadAsEmpty) {
  Message msg = ParseOrDie(kAdt);
  EXPECT_EQ(msg.Get("PID", 2), "");   // empty between separators
  EXPECT_EQ(msg.Get("PID", 40), "");  // beyond the last field
  EXPECT_EQ(msg.Get("PID", 0), "");   // no field 0
  EXPECT_EQ(msg.Get("PID", 5, 0, 9), "");
  EXPECT_EQ(msg.Get("PID", 5, 0, 1, 2), "");
  EXPECT_EQ(msg.Get("PD1", 3), "");  // absent segment
  EXPECT_EQ(msg.Get("PID", 3, -1), "");
  EXPECT_FALSE(msg.Has("PD1"));
}

TEST(Hl7ParserTest, HonoursDeclaredSeparators) {
  // Unusual but legal separators: field '#', component '!', repetition '*', escape '$', sub '%'.
  Message msg = ParseOrDie(
      "MSH#!*$%#PAS#RXK#HUB#HUB#20240315103000##ADT!A02#C1#P#2.3\r"
      "PID#1##111!!!RXK!MR*9434765919!!!NHS#\r"
      "PV1#1#I#W1!R2%sub#\r");
  EXPECT_EQ(msg.separators().field, '#');
  EXPECT_EQ(msg.TriggerEvent(), "A02");
  EXPECT_EQ(msg.Get("PID", 3, 1, 1), "9434765919");
  EXPECT_EQ(msg.Get("PID", 3, 0, 4), "RXK");
  EXPECT_EQ(msg.Get("PV1", 3, 0, 2, 1), "R2");
  EXPECT_EQ(msg.Get("PV1", 3, 0, 2, 2), "sub");
  // '|' is ordinary data under these separators.
  Message pipes = ParseOrDie("MSH#!*$%#A|B#RXK\r");
  EXPECT_EQ(pipes.Get("MSH", 3), "A|B");
}

TEST(Hl7ParserTest, DecodesEscapeSequencesAfterSplitting) {
  Message msg = ParseOrDie(
      "MSH|^~\\&|PAS|RXK\r"
      "NTE|1||a\\F\\b\\S\\c\\T\\d\\R\\e\\E\\f^second\r"
      "NTE|2||line1\\.br\\line2\\X4142\\\\H\\bold\\N\\\r"
      "NTE|3||broken\\X4G\\ end\\unterminated\r");
  std::vector<Segment> notes = msg.FindAll("NTE");
  ASSERT_EQ(notes.size(), 3u);
  EXPECT_EQ(notes[0].Get(3), "a|b^c&d~e\\f");
  EXPECT_EQ(notes[0].Get(3, 0, 2), "second");
  EXPECT_EQ(notes[1].Get(3), "line1\nline2ABbold");
  EXPECT_EQ(notes[2].Get(3), "broken end\\unterminated");
  // Escape is the inverse of decoding.
  const std::string original = "x|y^z&w~v\\u\rt";
  Message round = ParseOrDie("MSH|^~\\&|" + Escape(original, Separators{}) + "\r");
  EXPECT_EQ(round.Get("MSH", 3), "x|y^z&w~v\\u\nt");
}

TEST(Hl7ParserTest, AcceptsCrLfAndCrLfSegmentEndings) {
  std::string cr = kAdt;
  std::string lf = cr;
  std::string crlf;
  for (char& c : lf) {
    if (c == '\r') {
      c = '\n';
    }
  }
  for (char c : cr) {
    crlf.push_back(c);
    if (c == '\r') {
      crlf.push_back('\n');
    }
  }
  for (const std::string& raw : {cr, lf, crlf, "\r\n" + crlf + "\r\n\r\n"}) {
    Message msg = ParseOrDie(raw);
    EXPECT_EQ(msg.SegmentCount(), 4u);
    EXPECT_EQ(msg.Get("PV1", 19), "V000123");
    EXPECT_EQ(msg.Get("PID", 11, 0, 7), "H");
  }
  // Without a trailing terminator the last segment still counts.
  Message no_tail = ParseOrDie(cr.substr(0, cr.size() - 1));
  EXPECT_EQ(no_tail.Get("PV1", 19), "V000123");
}

TEST(Hl7ParserTest, KeepsZSegmentsAndRepeatedSegmentsInOrder) {
  Message msg = ParseOrDie("MSH|^~\\&|PAS|RXK\rZU1|custom|data\rDG1|1||A01^One\rDG1|2||B02^Two\r");
  EXPECT_EQ(msg.Get("ZU1", 2), "data");
  std::vector<Segment> dg1 = msg.FindAll("DG1");
  ASSERT_EQ(dg1.size(), 2u);
  EXPECT_EQ(dg1[1].Get(3, 0, 2), "Two");
}

TEST(Hl7ParserTest, RejectsMalformedHeaders) {
  for (const char* bad : {"", "PID|1", "MSH", "MSH|^~\\", "MSH|^~\\&&|X", "MSH|^^\\&|X",
                          "MSHA^~\\&|X", "MSH|^~\\&|X\rpid|1\r", "MSH|^~\\&|X\r12|x\r",
                          "MSH|^~\\&|X\rMSH|^~\\&|Y\r", "MSH\r^~\\&|X"}) {
    Result<Message> parsed = Message::Parse(bad);
    EXPECT_FALSE(parsed.ok()) << bad;
    if (!parsed.ok()) {
      EXPECT_EQ(parsed.status().code(), kReasonMalformedMessage);
    }
  }
  // A v2.7 truncation character is accepted.
  EXPECT_TRUE(Message::Parse("MSH|^~\\&#|PAS|RXK\r").ok());
}

TEST(Hl7ParserTest, SurvivesRandomBytesAndMutations) {
  std::mt19937 rng(20240315);  // fixed seed: deterministic
  std::uniform_int_distribution<int> byte(0, 255);
  const std::string seed = kAdt;
  int parsed_ok = 0;
  for (int round = 0; round < 3000; ++round) {
    std::string input;
    if (round % 3 == 0) {
      std::uniform_int_distribution<int> len(0, 300);
      for (int i = len(rng); i > 0; --i) {
        input.push_back(static_cast<char>(byte(rng)));
      }
      if (round % 2 == 0) {
        input = "MSH|^~\\&|" + input;
      }
    } else {
      input = seed;
      std::uniform_int_distribution<size_t> pos(0, input.size() - 1);
      for (int m = round % 7 + 1; m > 0; --m) {
        input[pos(rng)] = static_cast<char>(byte(rng));
      }
      if (round % 5 == 0) {
        input.resize(pos(rng));
      }
    }
    Result<Message> parsed = Message::Parse(input);
    if (parsed.ok()) {
      ++parsed_ok;
      // Every accessor must be safe on whatever came out.
      const Message& msg = parsed.value();
      for (size_t s = 0; s < msg.SegmentCount(); ++s) {
        Segment seg = msg.segment(s);
        for (int f = 0; f <= seg.FieldCount() + 1; ++f) {
          for (int r = 0; r <= seg.RepetitionCount(f); ++r) {
            (void)seg.Get(f, r, 1);
            (void)seg.Get(f, r, 4, 2);
          }
        }
      }
      (void)msg.TriggerEvent();
    }
  }
  // Mutated copies of a valid message mostly still parse: the fuzzing reached the accessors.
  EXPECT_GT(parsed_ok, 500);
}

TEST(Hl7DateTimeTest, ParsesPrecisionsOffsetsAndUkLocalTime) {
  // Winter: GMT = UTC.
  Result<google::protobuf::Timestamp> winter = ParseDateTime("20240115103000");
  ASSERT_TRUE(winter.ok());
  EXPECT_EQ(winter->seconds(), 1705314600);
  // Summer: BST = UTC+1.
  Result<google::protobuf::Timestamp> summer = ParseDateTime("20240715103000");
  ASSERT_TRUE(summer.ok());
  EXPECT_EQ(summer->seconds(), 1721035800);  // 09:30 UTC
  // Explicit offsets win.
  EXPECT_EQ(ParseDateTime("20240715103000+0000")->seconds(), 1721039400);
  EXPECT_EQ(ParseDateTime("20240715113000+0100")->seconds(), 1721039400);
  EXPECT_EQ(ParseDateTime("20240715053000-0500")->seconds(), 1721039400);
  // Reduced precision and fractions.
  EXPECT_EQ(ParseDateTime("2024")->seconds(), 1704067200);
  EXPECT_EQ(ParseDateTime("202401151030")->seconds(), 1705314600);
  Result<google::protobuf::Timestamp> frac = ParseDateTime("20240115103000.25+0000");
  ASSERT_TRUE(frac.ok());
  EXPECT_EQ(frac->nanos(), 250000000);
  // BST starts 2024-03-31 01:00 UTC and ends 2024-10-27 01:00 UTC.
  EXPECT_EQ(ParseDateTime("20240331003000")->seconds(), 1711845000);  // GMT
  EXPECT_EQ(ParseDateTime("20240331023000")->seconds(), 1711848600);  // BST
  EXPECT_EQ(ParseDateTime("20241027013000")->seconds(), 1729989000);  // first 01:30 (BST)
  for (const char* bad : {"", "2024011", "20241315", "20240230", "20240115246000", "2024-01-15",
                          "20240115103000+01", "20240115.5", "abcd"}) {
    Result<google::protobuf::Timestamp> ts = ParseDateTime(bad);
    EXPECT_FALSE(ts.ok()) << bad;
    if (!ts.ok()) {
      EXPECT_EQ(ts.status().code(), kReasonInvalidTimestamp);
    }
  }
  EXPECT_EQ(ParseBirthDate("19800101").value(), "1980-01-01");
  EXPECT_EQ(ParseBirthDate("198001011230").value(), "1980-01-01");
  EXPECT_FALSE(ParseBirthDate("198001").ok());
  EXPECT_FALSE(ParseBirthDate("19800230").ok());
  EXPECT_EQ(FormatDateTime(Clock::TimePoint(std::chrono::seconds(1705314600))),
            "20240115103000+0000");
}

}  // namespace
}  // namespace carehub::adapters::hl7
