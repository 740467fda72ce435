#include "carehub/adapters/hl7/charset.h"

#include <iconv.h>

#include <cerrno>
#include <cstring>

#include "carehub/core/strings.h"
#include "carehub/core/validation.h"

namespace carehub::adapters::hl7 {
namespace {

// Owns one iconv descriptor.
class Converter {
 public:
  explicit Converter(const std::string& from) : cd_(iconv_open("UTF-8", from.c_str())) {}
  ~Converter() {
    if (ok()) {
      iconv_close(cd_);
    }
  }
  Converter(const Converter&) = delete;
  Converter& operator=(const Converter&) = delete;
  bool ok() const { return cd_ != reinterpret_cast<iconv_t>(-1); }
  iconv_t get() const { return cd_; }

 private:
  iconv_t cd_;
};

}  // namespace

std::optional<std::string> IconvNameForCharset(std::string_view msh18) {
  const std::string name = AsciiUpper(std::string(Trim(msh18, " \t")));
  if (name.empty() || name == "ASCII" || name == "ISO IR6" || name == "UNICODE UTF-8" ||
      name == "UTF-8" || name == "UTF8") {
    return "UTF-8";
  }
  if (name == "8859/1" || name == "ISO IR100" || name == "ISO-8859-1" || name == "ISO8859-1" ||
      name == "LATIN1") {
    return "ISO-8859-1";
  }
  if (name == "8859/15" || name == "ISO-8859-15") {
    return "ISO-8859-15";
  }
  if (name == "WINDOWS-1252" || name == "CP1252" || name == "WIN1252") {
    return "WINDOWS-1252";
  }
  return std::nullopt;
}

Result<std::string> TranscodeToUtf8(std::string_view bytes, const std::string& iconv_name) {
  if (iconv_name == "UTF-8") {
    return std::string(bytes);
  }
  Converter converter(iconv_name);
  if (!converter.ok()) {
    return Status::Error(std::string(kReasonUnsupportedCharset),
                         "character set " + iconv_name + " is not available");
  }
  // One input byte becomes at most three UTF-8 bytes in every single-byte charset we accept.
  std::string out(bytes.size() * 3 + 4, '\0');
  char* in_ptr = const_cast<char*>(bytes.data());  // iconv's API is not const-correct
  size_t in_left = bytes.size();
  char* out_ptr = out.data();
  size_t out_left = out.size();
  if (iconv(converter.get(), &in_ptr, &in_left, &out_ptr, &out_left) == static_cast<size_t>(-1)) {
    return Status::Error(std::string(kReasonInvalidField),
                         "byte " + std::to_string(bytes.size() - in_left) +
                             " is not a character of the declared MSH-18 character set");
  }
  out.resize(out.size() - out_left);
  return out;
}

}  // namespace carehub::adapters::hl7
