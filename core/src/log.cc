#include "carehub/core/log.h"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_color_sinks.h>

#include "carehub/core/mutex.h"
#include "carehub/core/utf8.h"

namespace carehub {
namespace {

// A field of the log record escaped for a JSON string. spdlog's own %v and %n copy the text raw,
// and a message with a newline or a quote (a reload's change list, a YAML error) broke the
// one-object-per-line promise. `kField` picks the field: the message (%v) or the logger name (%n).
enum class JsonField { kMessage, kLoggerName };
template <JsonField kField>
class JsonEscapedFlag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    const auto& text = kField == JsonField::kMessage ? msg.payload : msg.logger_name;
    std::string escaped;
    AppendJsonEscaped(std::string_view(text.data(), text.size()), escaped);
    dest.append(escaped.data(), escaped.data() + escaped.size());
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<JsonEscapedFlag>();
  }
};

}  // namespace

void AppendJsonEscaped(std::string_view text, std::string& out) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x80) {
      // JSON text is UTF-8: a byte that is not part of a well-formed sequence (binary from a peer
      // at debug level) would make the whole line unparsable, so it becomes U+FFFD.
      const size_t len = Utf8SequenceLength(text, i);
      if (len == 0) {
        out += "\\ufffd";
      } else {
        out.append(text.substr(i, len));
        i += len - 1;
      }
      continue;
    }
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (u < 0x20 || u == 0x7f) {
          out += "\\u00";
          out += kHex[u >> 4];
          out += kHex[u & 15];
        } else {
          out += c;
        }
    }
  }
}

std::unique_ptr<spdlog::formatter> MakeLogFormatter(const std::string& format) {
  if (format == "json") {
    auto formatter = std::make_unique<spdlog::pattern_formatter>();
    formatter->add_flag<JsonEscapedFlag<JsonField::kMessage>>('*');
    formatter->add_flag<JsonEscapedFlag<JsonField::kLoggerName>>('N');
    formatter->set_pattern(
        R"({"ts":"%Y-%m-%dT%H:%M:%S.%e%z","level":"%l","logger":"%N","thread":%t,"msg":"%*"})");
    return formatter;
  }
  return std::make_unique<spdlog::pattern_formatter>("%Y-%m-%dT%H:%M:%S.%e%z %^%-5l%$ [%n] %v");
}

void UseStderrForLogs(const std::string& tool, spdlog::level::level_enum level) {
  auto logger = std::make_shared<spdlog::logger>(tool, MakeStderrLogSink("text"));
  logger->set_level(level);
  spdlog::set_default_logger(logger);
  spdlog::set_level(level);
}

std::shared_ptr<spdlog::sinks::sink> MakeStderrLogSink(const std::string& format) {
  auto sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
  sink->set_formatter(MakeLogFormatter(format));
  return sink;
}

std::shared_ptr<spdlog::logger> Logger(const std::string& name) {
  if (auto found = spdlog::get(name)) {
    return found;
  }
  // Serialises our own first uses, so two threads asking for the same new name do not both try
  // to register it. Registrations made elsewhere (a daemon's SetUpLogging) do not take this
  // mutex: register_logger throws if one got in first, and that logger is then returned.
  static Mutex mu;
  MutexLock lock(mu);
  if (auto found = spdlog::get(name)) {
    return found;
  }
  std::shared_ptr<spdlog::logger> logger;
  if (auto fallback = spdlog::default_logger()) {
    // clone() shares the sinks, keeps their formatter and takes the default logger's level (which
    // spdlog::set_level keeps equal to the global one). Not spdlog::initialize_logger: it would set
    // the registry's default pattern on those shared sinks, i.e. on the daemon's own sink.
    logger = fallback->clone(name);
  } else {
    // spdlog::shutdown() or drop_all() leave no default logger (and spdlog::get_level() would
    // then dereference null, so the level stays spdlog's default).
    logger = std::make_shared<spdlog::logger>(
        name, std::make_shared<spdlog::sinks::stderr_color_sink_mt>());
  }
  try {
    spdlog::register_logger(logger);
  } catch (const spdlog::spdlog_ex&) {
    if (auto found = spdlog::get(name)) {
      return found;
    }
    // Registered and dropped again in between: ours is still a working logger, unregistered.
  }
  return logger;
}

}  // namespace carehub
