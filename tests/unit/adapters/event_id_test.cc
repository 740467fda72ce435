#include "carehub/adapters/event_id.h"

#include <gtest/gtest.h>

#include <string>

namespace carehub::adapters {
namespace {

// Expected values computed apart from the code under test, in Python:
//   h = 1469598103934665603
//   for c in data: h = ((h ^ c) * 1099511628211) % 2**64
//   '%016x' % h
// Event ids already sent depend on these exact strings (event_id.h).
TEST(FingerprintTest, KnownAnswers) {
  EXPECT_EQ(Fingerprint(""), "14650fb0739d0383");
  EXPECT_EQ(Fingerprint("a"), "44bd8ad473cd9906");
  EXPECT_EQ(Fingerprint("foobar"), "88fad7c0a8ff07f2");
  EXPECT_EQ(Fingerprint("Encounter/enc-0001"), "bcb4654d09382cc5");
  EXPECT_EQ(Fingerprint("caf\xC3\xA9"), "8385b6459d53dff7");
  EXPECT_EQ(Fingerprint(std::string("a\0b", 3)).size(), 16u);
  EXPECT_NE(Fingerprint(std::string("a\0b", 3)), Fingerprint("a"));
}

TEST(EventIdPartTest, ShortPrintableIdsStayAsTheyAre) {
  EXPECT_EQ(EventIdPart("ENC-0001", 40), "ENC-0001");
  EXPECT_EQ(EventIdPart(std::string(40, 'x'), 40), std::string(40, 'x'));
  EXPECT_EQ(EventIdPart(std::string(64, 'x'), 64), std::string(64, 'x'));
  EXPECT_EQ(EventIdPart("!~", 2), "!~");
}

TEST(EventIdPartTest, LongOrUnprintableIdsBecomeTheirFingerprint) {
  // One byte over each adapter's limit (FHIR 40, CSV 64).
  EXPECT_EQ(EventIdPart(std::string(41, 'x'), 40), "k" + Fingerprint(std::string(41, 'x')));
  EXPECT_EQ(EventIdPart(std::string(65, 'x'), 64), "k" + Fingerprint(std::string(65, 'x')));
  EXPECT_EQ(EventIdPart(std::string(65, 'x'), 64), "kef464898fa28ec81");
  EXPECT_EQ(EventIdPart("caf\xC3\xA9", 40), "k8385b6459d53dff7");
  EXPECT_EQ(EventIdPart("has space", 40), "k" + Fingerprint("has space"));
  EXPECT_EQ(EventIdPart("tab\there", 40), "k" + Fingerprint("tab\there"));
  EXPECT_EQ(EventIdPart("", 40), "");
}

}  // namespace
}  // namespace carehub::adapters
