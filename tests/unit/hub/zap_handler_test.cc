// The ZAP handler over real CURVE handshakes on loopback TCP, in one process.

#include "zap_handler.h"

#include <gtest/gtest.h>
#include <zmq.h>

#include <chrono>
#include <optional>
#include <string>
#include <thread>
#include <zmq.hpp>

#include "carehub/hub/identities.h"
#include "carehub/metrics/registry.h"

namespace carehub::hub {
namespace {

using std::chrono::milliseconds;

struct KeyPair {
  std::string pub;
  std::string sec;
};

KeyPair NewKeyPair() {
  char pub[41];
  char sec[41];
  EXPECT_EQ(zmq_curve_keypair(pub, sec), 0);
  return {pub, sec};
}

TEST(DecideZapTest, KnownKeyOfTheRightKindOnly) {
  KeyPair publisher = NewKeyPair();
  KeyPair subscriber = NewKeyPair();
  KeyPair op = NewKeyPair();
  auto set = ParseIdentities(
      "identities:\n"
      "  rxk-pas: {kind: publisher, ods: [RXK], public_keys: ['" +
      publisher.pub +
      "']}\n"
      "  ics: {kind: subscriber, public_keys: ['" +
      subscriber.pub +
      "']}\n"
      "  ops: {kind: operator, public_keys: ['" +
      op.pub + "']}\n");
  ASSERT_TRUE(set.ok()) << set.status().ToString();
  const IdentitySet* ids = set.value().get();

  auto d = DecideZap(ids, kIngestZapDomain, "CURVE", publisher.pub);
  EXPECT_TRUE(d.allow);
  EXPECT_EQ(d.user_id, "rxk-pas");
  d = DecideZap(ids, kSubscribeZapDomain, "CURVE", subscriber.pub);
  EXPECT_TRUE(d.allow);
  EXPECT_EQ(d.user_id, "ics");

  EXPECT_EQ(DecideZap(ids, kIngestZapDomain, "CURVE", NewKeyPair().pub).reason, "unknown_key");
  EXPECT_EQ(DecideZap(ids, kSubscribeZapDomain, "CURVE", publisher.pub).reason, "wrong_endpoint");
  EXPECT_EQ(DecideZap(ids, kIngestZapDomain, "CURVE", subscriber.pub).reason, "wrong_endpoint");
  EXPECT_EQ(DecideZap(ids, kIngestZapDomain, "CURVE", op.pub).reason, "wrong_endpoint");
  EXPECT_EQ(DecideZap(ids, "elsewhere", "CURVE", publisher.pub).reason, "unknown_domain");
  EXPECT_EQ(DecideZap(ids, kIngestZapDomain, "NULL", "").reason, "unsupported_mechanism");
  EXPECT_EQ(DecideZap(ids, kIngestZapDomain, "PLAIN", "").reason, "unsupported_mechanism");
  EXPECT_EQ(DecideZap(nullptr, kIngestZapDomain, "CURVE", publisher.pub).reason, "unknown_key");
  EXPECT_FALSE(DecideZap(nullptr, kIngestZapDomain, "CURVE", publisher.pub).allow);
}

// A CURVE ROUTER like the hub's ingest socket, with the handler answering its handshakes.
class ZapHandlerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SetIdentities(publisher_.pub);
    zap_ = std::make_unique<ZapHandler>(context_, &identities_, &metrics_);
    ASSERT_TRUE(zap_->Start().ok());
    server_.set(zmq::sockopt::curve_server, 1);
    server_.set(zmq::sockopt::curve_secretkey, server_keys_.sec);
    server_.set(zmq::sockopt::zap_domain, std::string(kIngestZapDomain));
    server_.set(zmq::sockopt::linger, 0);
    server_.bind("tcp://127.0.0.1:0");
    endpoint_ = server_.get(zmq::sockopt::last_endpoint);
  }
  void TearDown() override {
    server_.close();
    zap_->Stop();
  }

  void SetIdentities(const std::string& publisher_key) {
    auto set = ParseIdentities(
        "identities:\n"
        "  rxk-pas: {kind: publisher, ods: [RXK], public_keys: ['" +
        publisher_key +
        "']}\n"
        "  ics: {kind: subscriber, public_keys: ['" +
        subscriber_.pub + "']}\n");
    ASSERT_TRUE(set.ok()) << set.status().ToString();
    identities_.Set(set.value());
  }

  // A client socket; `keys` empty means a plain (NULL mechanism) client.
  std::unique_ptr<zmq::socket_t> Client(const std::optional<KeyPair>& keys,
                                        const std::string& server_public) {
    auto s = std::make_unique<zmq::socket_t>(client_context_, zmq::socket_type::dealer);
    s->set(zmq::sockopt::linger, 0);
    if (keys) {
      s->set(zmq::sockopt::curve_serverkey, server_public);
      s->set(zmq::sockopt::curve_publickey, keys->pub);
      s->set(zmq::sockopt::curve_secretkey, keys->sec);
    }
    s->connect(endpoint_);
    return s;
  }

  // Sends from `client` and returns the server's User-Id for it, or empty if nothing arrived.
  std::optional<std::string> Exchange(zmq::socket_t& client, milliseconds wait) {
    (void)client.send(zmq::str_buffer("hello"), zmq::send_flags::dontwait);
    zmq::pollitem_t item{server_.handle(), 0, ZMQ_POLLIN, 0};
    if (zmq::poll(&item, 1, wait) <= 0) {
      return std::nullopt;
    }
    zmq::message_t routing;
    zmq::message_t payload;
    EXPECT_TRUE(server_.recv(routing));
    EXPECT_TRUE(server_.recv(payload));
    const char* user = payload.gets("User-Id");
    return std::string(user ? user : "");
  }

  uint64_t Refused(const std::string& reason) {
    return metrics_.CounterTotal("carehub_auth_refused_total", {{"reason", reason}});
  }
  bool WaitForRefused(const std::string& reason, uint64_t at_least) {
    for (int i = 0; i < 300 && Refused(reason) < at_least; ++i) {
      std::this_thread::sleep_for(milliseconds(10));
    }
    return Refused(reason) >= at_least;
  }

  KeyPair server_keys_ = NewKeyPair();
  KeyPair publisher_ = NewKeyPair();
  KeyPair subscriber_ = NewKeyPair();
  metrics::Registry metrics_;
  IdentityHolder identities_;
  zmq::context_t context_{1};
  zmq::context_t client_context_{1};
  std::unique_ptr<ZapHandler> zap_;
  zmq::socket_t server_{context_, zmq::socket_type::router};
  std::string endpoint_;
};

TEST_F(ZapHandlerTest, KnownKeyConnectsAsItsIdentity) {
  auto client = Client(publisher_, server_keys_.pub);
  auto user = Exchange(*client, milliseconds(5000));
  ASSERT_TRUE(user.has_value());
  EXPECT_EQ(*user, "rxk-pas");
  EXPECT_EQ(metrics_.CounterTotal("carehub_auth_accepted_total"), 1u);
  EXPECT_EQ(metrics_.CounterTotal("carehub_auth_refused_total"), 0u);
}

TEST_F(ZapHandlerTest, UnknownKeyIsRefusedAndCounted) {
  auto client = Client(NewKeyPair(), server_keys_.pub);
  EXPECT_FALSE(Exchange(*client, milliseconds(1000)).has_value());
  EXPECT_TRUE(WaitForRefused("unknown_key", 1));
}

TEST_F(ZapHandlerTest, SubscriberKeyOnTheIngestDomainIsRefused) {
  auto client = Client(subscriber_, server_keys_.pub);
  EXPECT_FALSE(Exchange(*client, milliseconds(1000)).has_value());
  EXPECT_TRUE(WaitForRefused("wrong_endpoint", 1));
}

TEST_F(ZapHandlerTest, RightPublicKeyWithWrongSecretCannotConnect) {
  KeyPair forged{publisher_.pub, NewKeyPair().sec};
  auto client = Client(forged, server_keys_.pub);
  EXPECT_FALSE(Exchange(*client, milliseconds(1500)).has_value());
  // The handshake fails cryptographically before any ZAP request: nobody was let in.
  EXPECT_EQ(metrics_.CounterTotal("carehub_auth_accepted_total"), 0u);
}

TEST_F(ZapHandlerTest, PlainClientNeverGetsThrough) {
  auto client = Client(std::nullopt, "");
  EXPECT_FALSE(Exchange(*client, milliseconds(1500)).has_value());
  EXPECT_EQ(metrics_.CounterTotal("carehub_auth_accepted_total"), 0u);
}

TEST_F(ZapHandlerTest, NewIdentitiesApplyToTheNextHandshake) {
  KeyPair rotated = NewKeyPair();
  auto before = Client(rotated, server_keys_.pub);
  EXPECT_FALSE(Exchange(*before, milliseconds(1000)).has_value());
  EXPECT_TRUE(WaitForRefused("unknown_key", 1));
  before.reset();

  SetIdentities(rotated.pub);
  auto after = Client(rotated, server_keys_.pub);
  auto user = Exchange(*after, milliseconds(5000));
  ASSERT_TRUE(user.has_value());
  EXPECT_EQ(*user, "rxk-pas");
  // The old key is gone with the reload.
  auto old_key = Client(publisher_, server_keys_.pub);
  EXPECT_FALSE(Exchange(*old_key, milliseconds(1000)).has_value());
}

}  // namespace
}  // namespace carehub::hub
