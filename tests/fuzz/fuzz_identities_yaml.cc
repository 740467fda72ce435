// The identities file (hub ParseIdentities): arbitrary YAML through the parser a reload runs.
// A set that loads is then queried the way the ZAP handler and the servers query it.
//
// Invariants: never throws or crashes; a refused file says why; every key maps back to an
// identity that lists it; a publisher may publish for the ODS codes it lists.

#include "carehub/hub/identities.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  carehub::fuzz::QuietLoggers();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using carehub::hub::IdentityKind;
  std::string yaml(reinterpret_cast<const char*>(data), size);
  auto parsed = carehub::hub::ParseIdentities(yaml);
  if (!parsed.ok()) {
    CAREHUB_FUZZ_CHECK(!parsed.status().code().empty() && !parsed.status().message().empty(),
                       "refused without a reason");
    return 0;
  }
  const carehub::hub::IdentitySet& set = *parsed.value();
  for (const auto& [id, identity] : set.identities()) {
    CAREHUB_FUZZ_CHECK(set.FindById(id) == &identity, "found by its id");
    for (const auto& key : identity.public_keys) {
      const carehub::hub::Identity* owner = set.FindByKey(key);
      CAREHUB_FUZZ_CHECK(owner == &identity, "a key maps back to its identity");
      (void)carehub::hub::KeyFingerprint(key);
    }
    if (identity.kind == IdentityKind::kPublisher) {
      for (const auto& ods : identity.ods) {
        CAREHUB_FUZZ_CHECK(carehub::hub::MayPublish(set, id, ods), "may publish its own ODS");
      }
    }
    if (identity.kind == IdentityKind::kSubscriber) {
      CAREHUB_FUZZ_CHECK(carehub::hub::MaySubscribe(set, id, identity.subscriber),
                         "may open its own subscriptions");
    }
  }
  (void)carehub::hub::DiffIdentities(set, set);
  return 0;
}
