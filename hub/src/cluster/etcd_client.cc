#include "cluster/etcd_client.h"

#include <httplib.h>
#include <sodium.h>

#include <nlohmann/json.hpp>

namespace carehub::hub {
namespace {

using json = nlohmann::json;

std::string Base64(const std::string& in) {
  std::string out(sodium_base64_ENCODED_LEN(in.size(), sodium_base64_VARIANT_ORIGINAL), '\0');
  sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(in.data()),
                    in.size(), sodium_base64_VARIANT_ORIGINAL);
  out.resize(out.size() - 1);  // the terminating NUL
  return out;
}

Result<std::string> Unbase64(const std::string& in) {
  std::string out(in.size(), '\0');
  size_t len = 0;
  if (sodium_base642bin(reinterpret_cast<unsigned char*>(out.data()), out.size(), in.data(),
                        in.size(), nullptr, &len, nullptr, sodium_base64_VARIANT_ORIGINAL) != 0) {
    return Status::Error("etcd_bad_answer", "a key or value is not base64");
  }
  out.resize(len);
  return out;
}

// The gateway writes int64 as JSON strings (proto3 JSON) and leaves out fields equal to zero.
int64_t Int(const json& j, const char* field) {
  auto it = j.find(field);
  if (it == j.end()) {
    return 0;
  }
  if (it->is_string()) {
    return std::stoll(it->get<std::string>());
  }
  return it->is_number() ? it->get<int64_t>() : 0;
}

Result<EtcdKeyValue> KeyValueFrom(const json& kv) {
  EtcdKeyValue out;
  auto key = Unbase64(kv.value("key", ""));
  auto value = Unbase64(kv.value("value", ""));
  if (!key.ok()) {
    return key.status();
  }
  if (!value.ok()) {
    return value.status();
  }
  out.key = std::move(key).value();
  out.value = std::move(value).value();
  out.create_revision = Int(kv, "create_revision");
  out.mod_revision = Int(kv, "mod_revision");
  out.lease = Int(kv, "lease");
  return out;
}

json OpJson(const EtcdOp& op) {
  switch (op.kind) {
    case EtcdOp::Kind::kPut: {
      json put = {{"key", Base64(op.key)}, {"value", Base64(op.value)}};
      if (op.lease != 0) {
        put["lease"] = op.lease;
      }
      return {{"request_put", put}};
    }
    case EtcdOp::Kind::kDelete:
      return {{"request_delete_range", {{"key", Base64(op.key)}}}};
    case EtcdOp::Kind::kGet:
      return {{"request_range", {{"key", Base64(op.key)}}}};
  }
  return {};
}

json CompareJson(const EtcdCompare& c) {
  json out = {{"key", Base64(c.key)}, {"result", "EQUAL"}};
  switch (c.target) {
    case EtcdCompare::Target::kCreateRevision:
      out["target"] = "CREATE";
      out["create_revision"] = c.revision;
      break;
    case EtcdCompare::Target::kModRevision:
      out["target"] = "MOD";
      out["mod_revision"] = c.revision;
      break;
    case EtcdCompare::Target::kValue:
      out["target"] = "VALUE";
      out["value"] = Base64(c.value);
      break;
  }
  return out;
}

Result<json> Parse(const std::string& body) {
  try {
    return json::parse(body);
  } catch (const json::exception& e) {
    return Status::Error("etcd_bad_answer",
                         std::string("undecodable answer from etcd: ") + e.what());
  }
}

}  // namespace

EtcdClient::EtcdClient(std::vector<std::string> endpoints,
                       std::chrono::milliseconds request_timeout)
    : endpoints_(std::move(endpoints)), request_timeout_(request_timeout) {}

Result<json> EtcdClient::Post(const std::string& path, const json& request) {
  const std::string body = request.dump();
  std::string last_error = "no etcd endpoint configured";
  for (size_t tried = 0; tried < endpoints_.size(); ++tried) {
    const std::string& endpoint = endpoints_[current_];
    httplib::Client client(endpoint);
    const auto seconds = request_timeout_.count() / 1000;
    const auto micros = (request_timeout_.count() % 1000) * 1000;
    client.set_connection_timeout(seconds, micros);
    client.set_read_timeout(seconds, micros);
    client.set_write_timeout(seconds, micros);
    auto answer = client.Post(path, body, "application/json");
    if (!answer) {
      last_error = endpoint + ": " + httplib::to_string(answer.error());
    } else if (answer->status == 200) {
      return Parse(answer->body);
    } else {
      // 503 and friends: this member cannot serve now (no leader, no quorum); another may.
      auto j = Parse(answer->body);
      std::string message = j.ok() ? j.value().value("message", answer->body) : answer->body;
      if (answer->status < 500) {
        return Status::Error("etcd_error", endpoint + ": " + message);
      }
      last_error = endpoint + ": HTTP " + std::to_string(answer->status) + ": " + message;
    }
    current_ = (current_ + 1) % endpoints_.size();
  }
  return Status::Error("etcd_unreachable", "no etcd member answered within " +
                                               std::to_string(request_timeout_.count()) +
                                               " ms (last: " + last_error + ")");
}

Result<int64_t> EtcdClient::Grant(int64_t ttl_seconds) {
  auto j = Post("/v3/lease/grant", json{{"TTL", ttl_seconds}});
  if (!j.ok()) {
    return j.status();
  }
  const int64_t id = Int(j.value(), "ID");
  if (id == 0) {
    return Status::Error("etcd_error", "lease grant refused: " + j.value().dump());
  }
  return id;
}

Result<int64_t> EtcdClient::KeepAlive(int64_t lease) {
  auto j = Post("/v3/lease/keepalive", json{{"ID", lease}});
  if (!j.ok()) {
    return j.status();
  }
  auto result = j.value().find("result");
  if (result == j.value().end()) {
    return Status::Error("etcd_error", "lease keepalive refused: " + j.value().dump());
  }
  return Int(*result, "TTL");  // absent (0): the lease is gone
}

Status EtcdClient::Revoke(int64_t lease) {
  auto j = Post("/v3/lease/revoke", json{{"ID", lease}});
  return j.ok() ? Status::Ok() : j.status();
}

Result<int64_t> EtcdClient::Put(const std::string& key, const std::string& value, int64_t lease) {
  auto txn = Txn({}, {EtcdOp{EtcdOp::Kind::kPut, key, value, lease}}, {});
  if (!txn.ok()) {
    return txn.status();
  }
  return txn.value().revision;
}

Result<EtcdTxnResult> EtcdClient::Txn(const std::vector<EtcdCompare>& compare,
                                      const std::vector<EtcdOp>& success,
                                      const std::vector<EtcdOp>& failure) {
  json request = {
      {"compare", json::array()}, {"success", json::array()}, {"failure", json::array()}};
  for (const auto& c : compare) {
    request["compare"].push_back(CompareJson(c));
  }
  for (const auto& op : success) {
    request["success"].push_back(OpJson(op));
  }
  for (const auto& op : failure) {
    request["failure"].push_back(OpJson(op));
  }
  auto j = Post("/v3/kv/txn", request);
  if (!j.ok()) {
    return j.status();
  }
  EtcdTxnResult out;
  out.succeeded = j.value().value("succeeded", false);
  out.revision = Int(j.value().value("header", json::object()), "revision");
  for (const auto& response : j.value().value("responses", json::array())) {
    auto range = response.find("response_range");
    if (range == response.end()) {
      continue;
    }
    auto kvs = range->value("kvs", json::array());
    if (kvs.empty()) {
      out.gets.emplace_back();
      continue;
    }
    auto kv = KeyValueFrom(kvs.front());
    if (!kv.ok()) {
      return kv.status();
    }
    out.gets.emplace_back(std::move(kv).value());
  }
  return out;
}

}  // namespace carehub::hub
