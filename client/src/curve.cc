#include "carehub/client/curve.h"

#include <fstream>
#include <sstream>

#include "carehub/core/secret_file.h"

namespace carehub::client {
namespace {

// Key files hold lines "public: <z85>" and "secret: <z85>"; a line starting with '#' is a
// comment. Only at the start: '#' is a Z85 digit, so it may occur inside a key.
Result<CurveKeyPair> Parse(const std::filesystem::path& path, bool need_secret) {
  std::ifstream in(path);
  if (!in) {
    return Status::Error("key_file", "cannot read key file " + path.string());
  }
  CurveKeyPair keys;
  std::string line;
  while (std::getline(in, line)) {
    auto first = line.find_first_not_of(" \t");
    if (first != std::string::npos && line[first] == '#') {
      continue;
    }
    auto colon = line.find(':');
    if (colon == std::string::npos) {
      continue;
    }
    std::string name = line.substr(0, colon);
    std::string value = line.substr(colon + 1);
    auto trim = [](std::string& s) {
      s.erase(0, s.find_first_not_of(" \t\r"));
      s.erase(s.find_last_not_of(" \t\r") + 1);
    };
    trim(name);
    trim(value);
    if (name == "public") {
      keys.public_key = value;
    } else if (name == "secret") {
      keys.secret_key = value;
    }
  }
  if (keys.public_key.size() != 40) {
    return Status::Error("key_file", path.string() + " has no 40-character Z85 public key");
  }
  if (need_secret && keys.secret_key.size() != 40) {
    return Status::Error("key_file", path.string() + " has no 40-character Z85 secret key");
  }
  return keys;
}

}  // namespace

Result<CurveKeyPair> ReadKeyFile(const std::filesystem::path& path) {
  if (path.empty()) {
    return Status::Error("key_file", "no key file given");
  }
  auto keys = Parse(path, true);
  if (!keys.ok()) {
    return keys;
  }
  // Checked after parsing, so a missing file is reported as missing, not as a mode problem.
  Status mode = CheckSecretFileMode(path, "CURVE secret key file");
  if (!mode.ok()) {
    return mode;
  }
  return keys;
}

Result<std::string> ReadPublicKeyFile(const std::filesystem::path& path) {
  if (path.empty()) {
    return Status::Error("key_file", "no public key file given");
  }
  auto keys = Parse(path, false);
  if (!keys.ok()) {
    return keys.status();
  }
  return keys.value().public_key;
}

}  // namespace carehub::client
