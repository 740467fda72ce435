// carehub-subscribe's JSON lines (tools/json_lines.h) are protobuf's own: for every kind of event
// the synthetic generator makes, identifiable and redacted, one writer used for them all prints
// exactly what google::protobuf::util::MessageToJsonString prints for each.

#include "json_lines.h"

#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>

#include <string>

#include "carehub/core/synthetic.h"

namespace carehub::tools {
namespace {

TEST(JsonLinesTest, EachLineIsWhatProtobufsPrinterPrints) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  JsonLineWriter writer(options);
  SyntheticOptions so;
  so.seed = 1207;
  SyntheticGenerator gen(so);
  std::string out;
  for (int i = 0; i < 500; ++i) {
    v1::DeliveredEvent d;
    *d.mutable_event() = gen.Next();
    d.mutable_event()->mutable_envelope()->set_hub_seq(static_cast<uint64_t>(i) + 1);
    d.set_agreement_id(i % 2 == 0 ? "DSA-1" : "DSA-\"quoted\"\n");  // escaping too
    if (i % 3 == 0) {  // a pseudonymised view: fields cleared, a pseudonym set
      auto* p = d.mutable_event()->mutable_envelope()->mutable_patient();
      p->clear_nhs_number();
      p->clear_given_name();
      p->set_pseudonym(std::string(64, 'a'));
    }
    std::string expected;
    ASSERT_TRUE(google::protobuf::util::MessageToJsonString(d, &expected, options).ok());
    const size_t before = out.size();
    ASSERT_TRUE(writer.Append(d, &out).ok());
    ASSERT_EQ(out.substr(before), expected) << "event " << i;
  }
  EXPECT_GT(out.size(), 500u * 100);
}

}  // namespace
}  // namespace carehub::tools
