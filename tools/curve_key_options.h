#pragma once
// --key and --server-key for the command-line clients (carehub-publish, carehub-subscribe): one
// definition of the options, of the rule that each needs the other (a client key without the hub's
// public key cannot start a CURVE handshake, and used to end as "cannot read key file " with an
// empty name), and of reading the two files into client keys.
//
// Header-only, no state: call AddCurveKeyOptions before parsing, ReadCurveKeyOptions after.

#include <CLI/CLI.hpp>
#include <optional>
#include <string>

#include "carehub/client/curve.h"
#include "carehub/core/status.h"

namespace carehub::tools {

struct CurveKeyOptions {
  std::string key_file;
  std::string server_key_file;
};

// `options` must outlive the parse.
inline void AddCurveKeyOptions(CLI::App& app, CurveKeyOptions* options) {
  auto* key = app.add_option("--key", options->key_file,
                             "CURVE client key file (from carehubctl keygen; others must not be "
                             "able to read it)");
  auto* server_key =
      app.add_option("--server-key", options->server_key_file,
                     "the hub's CURVE public key file (hub.pub, from the hub's operator)");
  key->needs(server_key);
  server_key->needs(key);
}

// Empty when no key was given (a plain client); an error names the file and what is wrong with it.
inline Result<std::optional<client::CurveClientKeys>> ReadCurveKeyOptions(
    const CurveKeyOptions& options) {
  if (options.key_file.empty()) {
    return std::optional<client::CurveClientKeys>();
  }
  auto keys = client::ReadKeyFile(options.key_file);
  if (!keys.ok()) {
    return keys.status();
  }
  auto server = client::ReadPublicKeyFile(options.server_key_file);
  if (!server.ok()) {
    return server.status();
  }
  return std::optional<client::CurveClientKeys>(
      client::CurveClientKeys{keys->public_key, keys->secret_key, server.value()});
}

}  // namespace carehub::tools
