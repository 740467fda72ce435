#include "carehub/core/secret_file.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

namespace carehub {

Status CheckSecretFileMode(const std::filesystem::path& path, std::string_view what) {
  struct stat st {};
  // stat, not lstat: a Kubernetes secret volume is a symlink to the file whose mode counts.
  if (::stat(path.c_str(), &st) != 0) {
    return Status::Error("secret_file", "cannot read " + std::string(what) + " " + path.string() +
                                            ": " + std::strerror(errno));
  }
  if ((st.st_mode & S_IRWXO) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return Status::Error("secret_file_mode",
                         std::string(what) + " " + path.string() + " has mode " + mode +
                             ": other users of this host can read it; run `chmod o-rwx " +
                             path.string() + "` (0600, or 0640 with the service's group)");
  }
  return Status::Ok();
}

}  // namespace carehub
