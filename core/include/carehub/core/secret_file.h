#pragma once
// The one rule for files that hold a secret (a CURVE secret key, an admin bearer token): refused
// when anyone outside the owner and the file's group may read, write or run it, as sshd refuses a
// private key others can read. Group access is allowed because the documented layout
// (docs/operations.md) is `root:carehub 0640`: root owns the file, the service's own group reads
// it. A file others can read is not a warning to be missed in a log: the daemon stops (or the
// client exits) with a one-line reason naming the file, its mode and the chmod that fixes it.
//
// Stateless and thread-safe. Errors: code "secret_file_mode" for a mode others can use,
// "secret_file" when the file cannot be stat()ed.

#include <filesystem>
#include <string_view>

#include "carehub/core/status.h"

namespace carehub {

// `what` names the file's role in the message ("CURVE secret key file", "admin token file").
[[nodiscard]] Status CheckSecretFileMode(const std::filesystem::path& path, std::string_view what);

}  // namespace carehub
