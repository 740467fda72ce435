#include "json_lines.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/type.pb.h>
#include <google/protobuf/util/type_resolver_util.h>

namespace carehub::tools {
namespace {

constexpr const char* kTypeUrlPrefix = "type.googleapis.com";

}  // namespace

// Resolves through protobuf's resolver for the generated pool once per type URL, then answers
// with a copy of what it kept.
class JsonLineWriter::CachingResolver final : public google::protobuf::util::TypeResolver {
 public:
  CachingResolver()
      : inner_(google::protobuf::util::NewTypeResolverForDescriptorPool(
            kTypeUrlPrefix, google::protobuf::DescriptorPool::generated_pool())) {}

  google::protobuf::util::Status ResolveMessageType(const std::string& type_url,
                                                    google::protobuf::Type* type) override {
    return Kept(types_, type_url, type, [this](const std::string& url, auto* out) {
      return inner_->ResolveMessageType(url, out);
    });
  }

  google::protobuf::util::Status ResolveEnumType(const std::string& type_url,
                                                 google::protobuf::Enum* enum_type) override {
    return Kept(enums_, type_url, enum_type, [this](const std::string& url, auto* out) {
      return inner_->ResolveEnumType(url, out);
    });
  }

 private:
  // `*out` from `kept`, resolving and keeping it first if it is not there yet.
  template <typename T, typename Resolve>
  static google::protobuf::util::Status Kept(std::map<std::string, T>& kept,
                                             const std::string& type_url, T* out,
                                             const Resolve& resolve) {
    auto it = kept.find(type_url);
    if (it == kept.end()) {
      T resolved;
      auto status = resolve(type_url, &resolved);
      if (!status.ok()) {
        return status;
      }
      it = kept.emplace(type_url, std::move(resolved)).first;
    }
    *out = it->second;
    return google::protobuf::util::Status();
  }

  std::unique_ptr<google::protobuf::util::TypeResolver> inner_;
  std::map<std::string, google::protobuf::Type> types_;
  std::map<std::string, google::protobuf::Enum> enums_;
};

JsonLineWriter::JsonLineWriter(google::protobuf::util::JsonPrintOptions options)
    : options_(options),
      resolver_(std::make_unique<CachingResolver>()),
      type_url_(std::string(kTypeUrlPrefix) + "/" + v1::DeliveredEvent::descriptor()->full_name()) {
}

JsonLineWriter::~JsonLineWriter() = default;

Status JsonLineWriter::Append(const v1::DeliveredEvent& event, std::string* out) {
  bytes_.clear();
  if (!event.SerializeToString(&bytes_)) {
    return Status::Error("json", "cannot serialize the event");
  }
  // Printed straight onto `out` (protobuf's StringOutputStream appends), cut back on an error.
  const size_t before = out->size();
  auto status =
      google::protobuf::util::BinaryToJsonString(resolver_.get(), type_url_, bytes_, out, options_);
  if (!status.ok()) {
    out->resize(before);
    return Status::Error("json", std::string(status.message()));
  }
  return Status::Ok();
}

}  // namespace carehub::tools
