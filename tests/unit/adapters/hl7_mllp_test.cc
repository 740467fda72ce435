// MllpListener over real loopback TCP: every trigger, malformed input, oversized frames, a failing
// sink, concurrent connections, idle timeout and shutdown.

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "carehub/adapters/hl7/adt_processor.h"
#include "carehub/adapters/hl7/mllp_listener.h"
#include "hl7_test_messages.h"

namespace carehub::adapters::hl7 {
namespace {

using namespace testing;  // NOLINT: the sample-message helpers

class RecordingSink final : public EventSink {
 public:
  Status Publish(const std::vector<v1::Event>& events) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (fail_) {
      return Status::Error("outbox_unavailable", "outbox write failed");
    }
    for (const v1::Event& e : events) {
      events_.push_back(e);
    }
    return Status::Ok();
  }
  void set_fail(bool fail) {
    std::lock_guard<std::mutex> lock(mu_);
    fail_ = fail;
  }
  std::vector<v1::Event> events() {
    std::lock_guard<std::mutex> lock(mu_);
    return events_;
  }

 private:
  std::mutex mu_;
  bool fail_ = false;
  std::vector<v1::Event> events_;
};

std::string Frame(const std::string& message) { return "\x0b" + message + "\x1c\x0d"; }

// A plain blocking TCP client speaking MLLP; every wait is bounded.
class MllpClient {
 public:
  explicit MllpClient(uint16_t port) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  }
  ~MllpClient() { close(fd_); }
  MllpClient(const MllpClient&) = delete;
  MllpClient& operator=(const MllpClient&) = delete;

  bool connected() const { return connected_; }

  bool SendRaw(const std::string& bytes) {
    size_t sent = 0;
    while (sent < bytes.size()) {
      ssize_t n = send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) {
        return false;
      }
      sent += static_cast<size_t>(n);
    }
    return true;
  }

  // The next ACK (without framing), or nullopt on timeout or when the server closed.
  std::optional<std::string> ReadAck(std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
      size_t start = buffer_.find('\x0b');
      size_t end = buffer_.find("\x1c\x0d", start == std::string::npos ? 0 : start);
      if (start != std::string::npos && end != std::string::npos) {
        std::string ack = buffer_.substr(start + 1, end - start - 1);
        buffer_.erase(0, end + 2);
        return ack;
      }
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) {
        return std::nullopt;
      }
      pollfd pfd{fd_, POLLIN, 0};
      if (poll(&pfd, 1, static_cast<int>(left.count())) <= 0) {
        return std::nullopt;
      }
      char buf[4096];
      ssize_t n = recv(fd_, buf, sizeof(buf), 0);
      if (n <= 0) {
        closed_ = true;
        return std::nullopt;
      }
      buffer_.append(buf, static_cast<size_t>(n));
    }
  }

  // True when the server closes the connection within `timeout`.
  bool WaitClosed(std::chrono::milliseconds timeout) {
    if (closed_) {
      return true;
    }
    pollfd pfd{fd_, POLLIN, 0};
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      if (poll(&pfd, 1, 50) > 0) {
        char buf[4096];
        ssize_t n = recv(fd_, buf, sizeof(buf), 0);
        if (n <= 0) {
          return true;
        }
      }
    }
    return false;
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
  bool closed_ = false;
  std::string buffer_;
};

struct AckView {
  std::string code;
  std::string echoed_id;
  std::string err_reason;
};

AckView Inspect(const std::optional<std::string>& ack) {
  EXPECT_TRUE(ack.has_value());
  if (!ack.has_value()) {
    return {};
  }
  Result<Message> msg = Message::Parse(*ack);
  EXPECT_TRUE(msg.ok()) << msg.status().ToString();
  if (!msg.ok()) {
    return {};
  }
  std::string reason = msg->Get("ERR", 5);
  return {msg->Get("MSA", 1), msg->Get("MSA", 2), reason};
}

class MllpListenerTest : public ::testing::Test {
 protected:
  MllpOptions Opts() {
    MllpOptions o;
    o.listen = "127.0.0.1:0";
    o.publisher_ods = "RXK";
    o.allowed_facilities = {"RXK", "RXK01"};
    o.identity.facility = "RXK";
    return o;
  }
  RecordingSink sink_;
};

// One sample message per supported trigger, across v2.3, v2.5.1 and v2.8.
std::vector<std::pair<std::string, std::string>> EveryTrigger() {
  const std::string mrg = Seg("MRG", {{1, std::string(kOtherNhsNumber) + "^^^NHS^NH"}});
  return {
      {"C-A01", Msh("A01", "C-A01") + Evn("A01") + Pid() + Pd1() + Pv1("I", "21") + Dg1() + Rf1()},
      {"C-A02", Msh("A02", "C-A02", "2.3") + Evn("A02") + Pid() + Pv1("I", "21")},
      {"C-A03",
       Msh("A03", "C-A03", "2.8") + Evn("A03") + Pid() + Pv1("I", "21", "V000123", true) + Pr1()},
      {"C-A04", Msh("A04", "C-A04") + Evn("A04") + Pid() + Pv1("E", "")},
      {"C-A05", Msh("A05", "C-A05", "2.3") + Evn("A05") + Pid() + Pv1("P", "11")},
      {"C-A08", Msh("A08", "C-A08", "2.8") + Evn("A08") + Pid() + Pv1("I", "21")},
      {"C-A11", Msh("A11", "C-A11") + Evn("A11") + Pid() + Pv1("I", "21")},
      {"C-A13", Msh("A13", "C-A13", "2.3") + Evn("A13") + Pid() + Pv1("I", "21")},
      {"C-A40", Msh("A40", "C-A40") + Evn("A40") + Pid() + mrg},
  };
}

TEST_F(MllpListenerTest, EveryTriggerIsAcknowledgedAfterPublish) {
  MllpListener listener(Opts(), sink_);
  ASSERT_TRUE(listener.Start().ok());
  ASSERT_NE(listener.port(), 0);
  MllpClient client(listener.port());
  ASSERT_TRUE(client.connected());
  for (const auto& [id, message] : EveryTrigger()) {
    ASSERT_TRUE(client.SendRaw(Frame(message)));
    AckView ack = Inspect(client.ReadAck());
    EXPECT_EQ(ack.code, "AA") << id << " " << ack.err_reason;
    EXPECT_EQ(ack.echoed_id, id);
  }
  std::vector<v1::Event> events = sink_.events();
  ASSERT_EQ(events.size(), 9u);
  EXPECT_EQ(events[0].activity().kind(), v1::ACTIVITY_KIND_EMERGENCY_ADMISSION);
  EXPECT_EQ(events[3].activity().kind(), v1::ACTIVITY_KIND_AE_ATTENDANCE);
  EXPECT_EQ(events[5].envelope().lifecycle(), v1::LIFECYCLE_UPDATE);
  EXPECT_EQ(events[6].envelope().supersedes_event_id(), "V000123:A01");
  EXPECT_EQ(events[7].envelope().supersedes_event_id(), "V000123:A03");
  EXPECT_EQ(events[8].activity().merged_patient().nhs_number(), kOtherNhsNumber);
  MllpStats stats = listener.Stats();
  EXPECT_EQ(stats.messages_received, 9u);
  EXPECT_EQ(stats.messages_accepted, 9u);
  EXPECT_EQ(stats.messages_rejected, 0u);
  EXPECT_EQ(stats.connections_accepted, 1u);
  listener.Stop();
}

TEST_F(MllpListenerTest, MalformedInputIsRejectedOrDiscardedAndCounted) {
  MllpListener listener(Opts(), sink_);
  ASSERT_TRUE(listener.Start().ok());
  MllpClient client(listener.port());
  ASSERT_TRUE(client.connected());

  // Binary junk outside frames is discarded; the following frame is still served.
  const std::string junk("\x00\xff\x1c\x0dGARBAGE\r\n\x7f", 13);
  ASSERT_TRUE(client.SendRaw(junk + Frame(Msh("A01", "OK1") + Pid() + Pv1("I", "21"))));
  AckView ok = Inspect(client.ReadAck());
  EXPECT_EQ(ok.code, "AA");
  EXPECT_EQ(ok.echoed_id, "OK1");

  // A frame of binary junk, then one without MSH: AR with nothing to echo.
  ASSERT_TRUE(client.SendRaw(Frame(std::string("\x01\x02\x03\xfe binary", 11))));
  AckView junk_frame = Inspect(client.ReadAck());
  EXPECT_EQ(junk_frame.code, "AR");
  EXPECT_EQ(junk_frame.echoed_id, "");
  EXPECT_EQ(junk_frame.err_reason, "malformed_message");
  ASSERT_TRUE(client.SendRaw(Frame(Pid() + Pv1("I", "21"))));
  AckView no_msh = Inspect(client.ReadAck());
  EXPECT_EQ(no_msh.code, "AR");
  EXPECT_EQ(no_msh.err_reason, "malformed_message");

  // Invalid NHS number, unknown facility, unsupported trigger: AR naming the reason.
  ASSERT_TRUE(client.SendRaw(Frame(Msh("A01", "BADNHS") + Pid(kBadNhsNumber) + Pv1("I", "21"))));
  std::optional<std::string> bad_nhs_ack = client.ReadAck();
  AckView bad_nhs = Inspect(bad_nhs_ack);
  EXPECT_EQ(bad_nhs.code, "AR");
  EXPECT_EQ(bad_nhs.echoed_id, "BADNHS");
  EXPECT_EQ(bad_nhs.err_reason, "invalid_nhs_number");
  ASSERT_TRUE(bad_nhs_ack.has_value());
  EXPECT_EQ(bad_nhs_ack->find(kBadNhsNumber), std::string::npos);
  ASSERT_TRUE(
      client.SendRaw(Frame(Msh("A01", "BADFAC", "2.5.1", "RR801") + Pid() + Pv1("I", "21"))));
  AckView bad_facility = Inspect(client.ReadAck());
  EXPECT_EQ(bad_facility.code, "AR");
  EXPECT_EQ(bad_facility.err_reason, "unknown_facility");
  ASSERT_TRUE(client.SendRaw(Frame(Msh("A28", "A28X") + Pid() + Pv1("I", "21"))));
  EXPECT_EQ(Inspect(client.ReadAck()).err_reason, "unsupported_trigger");

  // A frame restarted mid-way: the partial frame is abandoned, the new one served.
  ASSERT_TRUE(
      client.SendRaw("\x0bMSH|^~\\&|PAS|RX" + Frame(Msh("A02", "OK2") + Pid() + Pv1("I", "21"))));
  EXPECT_EQ(Inspect(client.ReadAck()).echoed_id, "OK2");

  // Byte-at-a-time delivery still frames correctly.
  const std::string slow = Frame(Msh("A03", "OK3") + Pid() + Pv1("I", "21", "V7", true));
  for (char c : slow) {
    ASSERT_TRUE(client.SendRaw(std::string(1, c)));
  }
  EXPECT_EQ(Inspect(client.ReadAck()).code, "AA");

  EXPECT_EQ(sink_.events().size(), 3u);
  MllpStats stats = listener.Stats();
  EXPECT_EQ(stats.messages_received, 8u);
  EXPECT_EQ(stats.messages_accepted, 3u);
  EXPECT_EQ(stats.messages_rejected, 5u);
  EXPECT_EQ(stats.rejected_by_reason["malformed_message"], 2u);
  EXPECT_EQ(stats.rejected_by_reason["invalid_nhs_number"], 1u);
  EXPECT_EQ(stats.rejected_by_reason["unknown_facility"], 1u);
  EXPECT_EQ(stats.rejected_by_reason["unsupported_trigger"], 1u);
  // 13 junk bytes plus the 15-byte abandoned partial frame.
  EXPECT_EQ(stats.junk_bytes_discarded, 13u + 15u);
}

TEST_F(MllpListenerTest, OversizedMessagesGetArOrACloseWithoutMsh) {
  MllpOptions opts = Opts();
  opts.max_message_bytes = 4096;
  MllpListener listener(opts, sink_);
  ASSERT_TRUE(listener.Start().ok());
  MllpClient client(listener.port());
  ASSERT_TRUE(client.connected());
  const std::string big =
      Msh("A01", "BIG1") + Pid() + Pv1("I", "21") + Seg("ZU1", {{1, std::string(10000, 'x')}});
  ASSERT_TRUE(client.SendRaw(Frame(big)));
  AckView ack = Inspect(client.ReadAck());
  EXPECT_EQ(ack.code, "AR");
  EXPECT_EQ(ack.echoed_id, "BIG1");
  EXPECT_EQ(ack.err_reason, "message_too_large");
  // The connection stays usable.
  ASSERT_TRUE(client.SendRaw(Frame(Msh("A01", "SMALL1") + Pid() + Pv1("I", "21"))));
  EXPECT_EQ(Inspect(client.ReadAck()).code, "AA");

  MllpClient junk_client(listener.port());
  ASSERT_TRUE(junk_client.connected());
  ASSERT_TRUE(junk_client.SendRaw(Frame(std::string(8192, 'z'))));
  EXPECT_FALSE(junk_client.ReadAck(std::chrono::seconds(5)).has_value());
  EXPECT_TRUE(junk_client.WaitClosed(std::chrono::seconds(5)));
  MllpStats stats = listener.Stats();
  EXPECT_EQ(stats.rejected_by_reason["message_too_large"], 2u);
  EXPECT_EQ(stats.messages_accepted, 1u);
}

TEST_F(MllpListenerTest, FailingSinkGivesAeAndTheResendSucceeds) {
  MllpListener listener(Opts(), sink_);
  ASSERT_TRUE(listener.Start().ok());
  MllpClient client(listener.port());
  const std::string message = Frame(Msh("A01", "RETRY1") + Pid() + Pv1("I", "21"));
  sink_.set_fail(true);
  ASSERT_TRUE(client.SendRaw(message));
  AckView ae = Inspect(client.ReadAck());
  EXPECT_EQ(ae.code, "AE");
  EXPECT_EQ(ae.echoed_id, "RETRY1");
  EXPECT_EQ(ae.err_reason, "sink_unavailable");
  sink_.set_fail(false);
  ASSERT_TRUE(client.SendRaw(message));
  EXPECT_EQ(Inspect(client.ReadAck()).code, "AA");
  EXPECT_EQ(sink_.events().size(), 1u);
  MllpStats stats = listener.Stats();
  EXPECT_EQ(stats.errors, 1u);
  EXPECT_EQ(stats.messages_accepted, 1u);
}

TEST_F(MllpListenerTest, ServesConcurrentConnections) {
  MllpListener listener(Opts(), sink_);
  ASSERT_TRUE(listener.Start().ok());
  constexpr int kClients = 4;
  constexpr int kMessages = 10;
  std::vector<std::thread> threads;
  std::vector<int> accepted(kClients, 0);
  for (int c = 0; c < kClients; ++c) {
    threads.emplace_back([&, c] {
      MllpClient client(listener.port());
      if (!client.connected()) {
        return;
      }
      for (int m = 0; m < kMessages; ++m) {
        std::string id = "P" + std::to_string(c) + "-" + std::to_string(m);
        if (!client.SendRaw(Frame(Msh("A01", id) + Pid() + Pv1("I", "21")))) {
          return;
        }
        std::optional<std::string> ack = client.ReadAck();
        if (ack.has_value() && ack->find("MSA|AA|" + id + "\r") != std::string::npos) {
          ++accepted[c];
        }
      }
    });
  }
  for (std::thread& t : threads) {
    t.join();
  }
  for (int c = 0; c < kClients; ++c) {
    EXPECT_EQ(accepted[c], kMessages) << "client " << c;
  }
  EXPECT_EQ(sink_.events().size(), static_cast<size_t>(kClients * kMessages));
  EXPECT_EQ(listener.Stats().connections_accepted, static_cast<uint64_t>(kClients));
}

TEST_F(MllpListenerTest, ClosesIdleConnections) {
  MllpOptions opts = Opts();
  opts.idle_timeout = std::chrono::milliseconds(200);
  MllpListener listener(opts, sink_);
  ASSERT_TRUE(listener.Start().ok());
  MllpClient client(listener.port());
  ASSERT_TRUE(client.connected());
  EXPECT_TRUE(client.WaitClosed(std::chrono::seconds(5)));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (listener.Stats().connections_active != 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  MllpStats stats = listener.Stats();
  EXPECT_EQ(stats.idle_timeouts, 1u);
  EXPECT_EQ(stats.connections_active, 0u);
}

TEST_F(MllpListenerTest, StopClosesOpenConnectionsAndIsIdempotent) {
  MllpListener listener(Opts(), sink_);
  ASSERT_TRUE(listener.Start().ok());
  EXPECT_EQ(listener.Start().code(), "already_started");
  MllpClient client(listener.port());
  ASSERT_TRUE(client.connected());
  ASSERT_TRUE(client.SendRaw(Frame(Msh("A01", "S1") + Pid() + Pv1("I", "21"))));
  EXPECT_EQ(Inspect(client.ReadAck()).code, "AA");
  const auto start = std::chrono::steady_clock::now();
  listener.Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(3));
  EXPECT_TRUE(client.WaitClosed(std::chrono::seconds(2)));
  listener.Stop();
  MllpClient late(listener.port());
  EXPECT_FALSE(late.connected());
}

TEST_F(MllpListenerTest, RejectsBadListenAddresses) {
  for (const char* listen :
       {"127.0.0.1", "127.0.0.1:http", "127.0.0.1:70000", "no.such.host.invalid:0"}) {
    MllpOptions opts = Opts();
    opts.listen = listen;
    MllpListener listener(opts, sink_);
    EXPECT_FALSE(listener.Start().ok()) << listen;
  }
}

}  // namespace
}  // namespace carehub::adapters::hl7
