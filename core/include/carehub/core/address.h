#pragma once
// Network addresses as they appear in carehub's configs and command lines: "HOST:PORT" listen
// addresses, ZeroMQ "tcp://HOST:PORT" endpoints, and the one loopback test that decides where
// plain (unencrypted, unauthenticated) transport and token-less admin listeners are allowed
// (docs/security.md, DESIGN §7). The hub and the adapters used to carry their own copies, which
// disagreed with each other and both took any name starting with "127." for loopback.
//
// Pure functions: no I/O, no name resolution, thread-safe.

#include <cstdint>
#include <string>
#include <string_view>

#include "carehub/core/status.h"

namespace carehub {

struct HostPort {
  std::string host;  // without the brackets of "[v6addr]"; never empty
  uint16_t port = 0;
};

// Error code of every parse failure below.
inline constexpr char kInvalidAddressCode[] = "invalid_address";

// "HOST:PORT" or "[V6ADDR]:PORT" with a decimal port from 0 to 65535 (0: ephemeral). An IPv6
// address must be bracketed (an unbracketed "::1:80" is ambiguous). The host is not checked
// beyond being non-empty: names, interface names and "*" pass through for the caller's bind or
// connect to judge. Errors: kInvalidAddressCode.
Result<HostPort> ParseHostPort(std::string_view text);

// A ZeroMQ "tcp://HOST:PORT" endpoint, as ParseHostPort after the scheme, except that the port may
// also be ZeroMQ's "*" (ephemeral, reported as 0). Other schemes (ipc://, inproc://) are errors:
// callers that accept them test the scheme first. Errors: kInvalidAddressCode.
Result<HostPort> ParseTcpEndpoint(std::string_view endpoint);

// True when `host` is a numeric loopback address: IPv4 127.0.0.0/8 in strict dotted-decimal form
// (four decimal parts, as inet_pton reads them), IPv6 ::1 in any spelling, or an IPv4-mapped
// ::ffff:127.x.y.z; IPv6 may be bracketed ("[::1]"). Everything else is false, in particular:
//   - names, "localhost" included. Deliberate: a name is resolved by whoever connects or binds,
//     at that time and again on every reconnect, through /etc/hosts, nsswitch and DNS; a
//     check-time getaddrinfo() would prove nothing about the later connection, would make config
//     parsing do I/O, and "127.example.net" or "127.0.0.1.nip.io" show that a name's spelling says
//     nothing about where it leads. Configs write 127.0.0.1 or [::1] instead.
//   - interface names such as "lo" and ZeroMQ's "*";
//   - shorthand and other-base IPv4 forms ("127.1", "0x7f.1", "0177.0.0.1") that some resolvers
//     accept and others do not;
//   - IPv6 with a zone ("::1%lo") and the empty string.
bool IsLoopbackHost(std::string_view host);

}  // namespace carehub
