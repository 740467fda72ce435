#include "carehub/core/address.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <charconv>

namespace carehub {
namespace {

Status Invalid(std::string message) {
  return Status::Error(kInvalidAddressCode, std::move(message));
}

// Splits "HOST:PORT" / "[V6]:PORT" into the host (brackets removed) and the port text.
Status Split(std::string_view text, std::string* host, std::string_view* port_text) {
  if (!text.empty() && text.front() == '[') {
    const size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return Invalid("expected [v6addr]:PORT");
    }
    *host = std::string(text.substr(1, close - 1));
    *port_text = text.substr(close + 2);
  } else {
    const size_t colon = text.rfind(':');
    if (colon == std::string_view::npos || text.find(':') != colon) {
      return Invalid("expected HOST:PORT (an IPv6 address in brackets)");
    }
    *host = std::string(text.substr(0, colon));
    *port_text = text.substr(colon + 1);
  }
  if (host->empty()) {
    return Invalid("expected HOST:PORT with a host");
  }
  return Status::Ok();
}

Result<uint16_t> ParsePort(std::string_view text) {
  unsigned value = 0;
  const char* end = text.data() + text.size();
  auto [stop, ec] = std::from_chars(text.data(), end, value);
  if (text.empty() || ec != std::errc() || stop != end || value > 65535) {
    return Invalid("expected HOST:PORT with a port from 0 to 65535");
  }
  return static_cast<uint16_t>(value);
}

}  // namespace

Result<HostPort> ParseHostPort(std::string_view text) {
  HostPort out;
  std::string_view port_text;
  CAREHUB_RETURN_IF_ERROR(Split(text, &out.host, &port_text));
  auto port = ParsePort(port_text);
  if (!port.ok()) {
    return port.status();
  }
  out.port = port.value();
  return out;
}

Result<HostPort> ParseTcpEndpoint(std::string_view endpoint) {
  constexpr std::string_view kTcp = "tcp://";
  if (endpoint.substr(0, kTcp.size()) != kTcp) {
    return Invalid("expected tcp://HOST:PORT");
  }
  endpoint.remove_prefix(kTcp.size());
  HostPort out;
  std::string_view port_text;
  CAREHUB_RETURN_IF_ERROR(Split(endpoint, &out.host, &port_text));
  if (port_text == "*") {
    return out;  // ZeroMQ's ephemeral port
  }
  auto port = ParsePort(port_text);
  if (!port.ok()) {
    return Invalid("expected tcp://HOST:PORT with a port from 0 to 65535 or *");
  }
  out.port = port.value();
  return out;
}

bool IsLoopbackHost(std::string_view host) {
  bool bracketed = false;
  if (!host.empty() && host.front() == '[') {
    if (host.size() < 2 || host.back() != ']') {
      return false;
    }
    host = host.substr(1, host.size() - 2);
    bracketed = true;
  }
  // inet_pton needs a NUL-terminated string; an embedded NUL would end it early, so refuse it.
  if (host.empty() || host.find('\0') != std::string_view::npos) {
    return false;
  }
  const std::string text(host);
  if (!bracketed) {
    in_addr v4{};
    // inet_pton (unlike inet_aton) takes only four decimal parts: "127.1" and "0x7f.1" fail.
    if (inet_pton(AF_INET, text.c_str(), &v4) == 1) {
      return (ntohl(v4.s_addr) >> 24) == 127;
    }
  }
  in6_addr v6{};
  if (inet_pton(AF_INET6, text.c_str(), &v6) != 1) {
    return false;
  }
  if (IN6_IS_ADDR_LOOPBACK(&v6)) {
    return true;
  }
  // ::ffff:127.x.y.z reaches IPv4 loopback through a dual-stack socket.
  return IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127;
}

}  // namespace carehub
