#pragma once
// CURVE key material for clients (DESIGN §7). Keys are Z85 text, 40 characters.

#include <filesystem>
#include <string>

#include "carehub/core/status.h"

namespace carehub::client {

struct CurveClientKeys {
  std::string client_public;
  std::string client_secret;
  std::string server_public;
};

// Reads a key file written by `carehubctl keygen` ("public: <z85>" / "secret: <z85>" lines).
struct CurveKeyPair {
  std::string public_key;
  std::string secret_key;
};
// The file holds a secret: it is refused when other users of the host may read it
// (core/secret_file.h; code "secret_file_mode"). Errors name the file.
Result<CurveKeyPair> ReadKeyFile(const std::filesystem::path& path);
// Reads just the public key of a key pair or a ".pub" file.
Result<std::string> ReadPublicKeyFile(const std::filesystem::path& path);

}  // namespace carehub::client
