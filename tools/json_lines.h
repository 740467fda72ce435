#pragma once
// Delivered events as JSON lines (carehub-subscribe --format ndjson), through protobuf's own JSON
// printer with the message types resolved once per process instead of once per event.
//
// google::protobuf::util::MessageToJsonString resolves the message's type and every type nested in
// it from the descriptor pool on each call (protobuf 3.21: a fresh google::protobuf::Type, field by
// field); for a stream of events of one type that was most of the tool's CPU. Here a TypeResolver
// keeps each resolved type, and each event is printed from its wire bytes (BinaryToJsonString,
// what MessageToJsonString does inside), so the output is byte for byte MessageToJsonString's.
//
// Thread-safety: one writer per thread. Not thread-safe.

#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/type_resolver.h>

#include <map>
#include <memory>
#include <string>

#include "carehub/core/status.h"
#include "carehub/v1/wire.pb.h"

namespace carehub::tools {

class JsonLineWriter {
 public:
  explicit JsonLineWriter(google::protobuf::util::JsonPrintOptions options);
  ~JsonLineWriter();

  // Appends `event` as one line of JSON (no newline) to `out`; an error if protobuf cannot print
  // it (then `out` is unchanged).
  Status Append(const v1::DeliveredEvent& event, std::string* out);

 private:
  class CachingResolver;
  google::protobuf::util::JsonPrintOptions options_;
  std::unique_ptr<CachingResolver> resolver_;
  std::string type_url_;
  std::string bytes_;  // reused: the event's wire bytes
};

}  // namespace carehub::tools
