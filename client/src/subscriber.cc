#include "carehub/client/subscriber.h"

#include <algorithm>
#include <thread>
#include <zmq.hpp>

#include "carehub/client/connection_watch.h"
#include "carehub/client/endpoints.h"

namespace carehub::client {
namespace {

using Steady = std::chrono::steady_clock;

class SubscriberImpl final : public Subscriber {
 public:
  explicit SubscriberImpl(SubscriberOptions options)
      : options_(std::move(options)),
        endpoints_(SplitEndpoints(options_.endpoint)),
        socket_(context_, zmq::socket_type::dealer) {}

  // Subscribes on one hub after another until one serves the subscription: a standby's
  // "not_primary" names the primary, a silent hub makes way for the next (docs/replication.md).
  // Other errors (unknown subscription, not yours) are the hub's final word.
  Status Connect() {
    const auto deadline = Steady::now() + options_.connect_timeout;
    // A silent hub gets its share of the timeout, at least a second, before the next is tried.
    const auto per_hub = std::max<std::chrono::milliseconds>(
        std::chrono::milliseconds(1000),
        options_.connect_timeout / static_cast<int>(endpoints_.size()));
    Status last = Status::Error("hub_unreachable", "no hub endpoint");
    do {
      const auto remaining =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Steady::now());
      last = ConnectTo(endpoints_[current_], std::min(per_hub, remaining));
      if (last.ok() || endpoints_.size() == 1) {
        return last;
      }
      if (last.code() == "not_primary") {
        auto it = std::find(endpoints_.begin(), endpoints_.end(), primary_hint_);
        current_ = it != endpoints_.end() ? static_cast<size_t>(it - endpoints_.begin())
                                          : (current_ + 1) % endpoints_.size();
        // Both may answer not_primary for a moment during a switch-over: do not spin.
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      } else if (last.code() == "hub_unreachable") {
        current_ = (current_ + 1) % endpoints_.size();
      } else {
        return last;
      }
    } while (Steady::now() < deadline);
    if (last.code() == "hub_unreachable") {
      return Status::Error("hub_unreachable", "no answer from the hubs at " + options_.endpoint +
                                                  " within " +
                                                  std::to_string(options_.connect_timeout.count()) +
                                                  " ms; the last: " + last.message());
    }
    return last;
  }

  Status ConnectTo(const std::string& endpoint, std::chrono::milliseconds timeout) {
    try {
      watch_.reset();  // before its socket closes (connection_watch.h)
      socket_ = zmq::socket_t(context_, zmq::socket_type::dealer);
      socket_.set(zmq::sockopt::linger, 0);
      socket_.set(zmq::sockopt::rcvhwm, 0);
      if (options_.curve) {
        socket_.set(zmq::sockopt::curve_serverkey, options_.curve->server_public);
        socket_.set(zmq::sockopt::curve_publickey, options_.curve->client_public);
        socket_.set(zmq::sockopt::curve_secretkey, options_.curve->client_secret);
      }
      watch_ = std::make_unique<ConnectionWatch>(context_, socket_, endpoint);
      socket_.connect(endpoint);
    } catch (const zmq::error_t& e) {
      return Status::Error("bad_endpoint", std::string("cannot connect: ") + e.what());
    }
    v1::Frame frame;
    frame.set_version(v1::PROTOCOL_VERSION_1);
    auto* s = frame.mutable_subscribe();
    s->set_subscription(options_.subscription);
    s->set_start(options_.start);
    s->set_seq(options_.start_seq);
    s->set_time_unix_ms(options_.start_time_unix_ms);
    s->set_initial_credit(options_.window);
    Send(frame);
    auto deadline = Steady::now() + timeout;
    while (Steady::now() < deadline) {
      auto reply =
          Receive(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Steady::now()));
      if (!reply) {
        break;
      }
      if (reply->has_subscribed()) {
        subscribed_ = reply->subscribed();
        unreturned_credit_ = 0;  // the new session starts with the whole window
        return Status::Ok();
      }
      if (reply->has_error()) {
        primary_hint_ = reply->error().primary_endpoint();
        return Status::Error(reply->error().code(), reply->error().message());
      }
      if (reply->has_notice()) {
        notice_ = reply->notice();
      }
    }
    // Silence has many causes; the socket monitor tells which this is (a refused key, the wrong
    // server key, nothing listening), so the message names it instead of only the timeout.
    watch_->Poll();
    return Status::Error("hub_unreachable", "no answer from the hub at " + endpoint + " within " +
                                                std::to_string(timeout.count()) + " ms: " +
                                                watch_->Explain(options_.curve.has_value()));
  }

  Result<std::optional<DeliveryBatch>> Next(std::chrono::milliseconds timeout) override {
    auto deadline = Steady::now() + timeout;
    while (true) {
      auto now = Steady::now();
      if (now - last_sent_ > options_.heartbeat_interval) {
        v1::Frame hb;
        hb.set_version(v1::PROTOCOL_VERSION_1);
        hb.mutable_heartbeat()->set_sent_at_unix_ms(0);
        Send(hb);
      }
      if (now - last_heard_ > options_.hub_timeout) {
        // The hub restarted or the network broke: subscribe again from our own last ack.
        Status s = Resubscribe();
        if (!s.ok() && !WaitForFailover(s)) {
          return s;
        }
      }
      if (now >= deadline) {
        return std::optional<DeliveryBatch>();
      }
      auto wait = std::min<std::chrono::milliseconds>(
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now),
          options_.heartbeat_interval);
      auto frame = Receive(wait);
      if (!frame) {
        continue;
      }
      if (frame->has_delivery()) {
        auto* d = frame->mutable_delivery();
        if (d->epoch() < max_epoch_) {
          // Fencing: a primary of an older epoch was superseded (paused or cut off while
          // another hub was elected); what it sends now may not be on the new timeline. Drop
          // it and find the current primary.
          ++stale_deliveries_;
          Status s = Resubscribe();
          if (!s.ok() && !WaitForFailover(s)) {
            return s;
          }
          continue;
        }
        max_epoch_ = d->epoch();
        DeliveryBatch batch;
        batch.epoch = d->epoch();
        batch.scanned_to_seq = d->scanned_to_seq();
        batch.head_seq = d->head_seq();
        batch.events.reserve(d->events_size());
        for (auto& e : *d->mutable_events()) {
          batch.events.push_back(std::move(e));
        }
        // Replenish the window by what we consumed, so the hub keeps streaming: in quarters of
        // the window, not per batch. At low rates a batch is a few events, and a Credit frame for
        // each cost the hub a receive and a wake-up of its delivery thread per batch; the hub
        // still holds three quarters of the window, so it never waits for these.
        unreturned_credit_ += batch.events.size();
        if (unreturned_credit_ >= CreditQuantum()) {
          v1::Frame credit;
          credit.set_version(v1::PROTOCOL_VERSION_1);
          credit.mutable_credit()->set_events(static_cast<uint32_t>(unreturned_credit_));
          Send(credit);
          unreturned_credit_ = 0;
        }
        return std::optional<DeliveryBatch>(std::move(batch));
      }
      if (frame->has_notice()) {
        notice_ = frame->notice();
        continue;
      }
      if (frame->has_error()) {
        if (frame->error().fatal()) {
          return Status::Error(frame->error().code(), frame->error().message());
        }
        if (frame->error().code() == "no_subscription" || frame->error().code() == "not_primary") {
          // A hub restarted on the same endpoint: the socket reconnected by itself, but the new
          // hub does not know this connection and answers our heartbeats with this error, which
          // would keep the hub timeout from ever firing (found by the soak run).
          Status s = Resubscribe();
          if (!s.ok() && !WaitForFailover(s)) {
            return s;
          }
        }
        continue;
      }
    }
  }

  Status Ack(uint64_t up_to_seq) override {
    if (up_to_seq <= acked_) {
      return Status::Ok();
    }
    v1::Frame frame;
    frame.set_version(v1::PROTOCOL_VERSION_1);
    frame.mutable_ack()->set_up_to_seq(up_to_seq);
    Send(frame);
    acked_ = up_to_seq;
    return Status::Ok();
  }

  const v1::Subscribed& subscribed() const override { return subscribed_; }
  std::optional<v1::Notice> notice() const override { return notice_; }
  uint64_t stale_deliveries_refused() const override { return stale_deliveries_; }

 private:
  // With several hubs, none serving for a while is a failover in progress (a standby not yet
  // promoted): keep trying, as a publisher keeps its outbox, instead of failing the caller. True
  // when the caller should carry on (the next attempt comes in about a second).
  bool WaitForFailover(const Status& s) {
    if (endpoints_.size() < 2 || (s.code() != "hub_unreachable" && s.code() != "not_primary")) {
      return false;
    }
    last_heard_ = Steady::now() - options_.hub_timeout + std::chrono::seconds(1);
    return true;
  }

  // Subscribes again on a fresh socket, from after our own last ack.
  Status Resubscribe() {
    options_.start = acked_ > 0 ? v1::Subscribe::START_AT_SEQ : options_.start;
    options_.start_seq = acked_ + 1;
    return Connect();
  }

  void Send(const v1::Frame& frame) {
    std::string bytes = frame.SerializeAsString();
    try {
      (void)socket_.send(zmq::buffer(bytes), zmq::send_flags::dontwait);
    } catch (const zmq::error_t&) {
    }
    last_sent_ = Steady::now();
  }

  std::optional<v1::Frame> Receive(std::chrono::milliseconds timeout) {
    zmq::pollitem_t items[] = {{socket_.handle(), 0, ZMQ_POLLIN, 0}};
    try {
      zmq::poll(items, 1, timeout);
    } catch (const zmq::error_t&) {
      return std::nullopt;
    }
    if (!(items[0].revents & ZMQ_POLLIN)) {
      return std::nullopt;
    }
    zmq::message_t msg;
    if (!socket_.recv(msg, zmq::recv_flags::dontwait)) {
      return std::nullopt;
    }
    last_heard_ = Steady::now();
    v1::Frame frame;
    if (!frame.ParseFromArray(msg.data(), static_cast<int>(msg.size()))) {
      return std::nullopt;
    }
    return frame;
  }

  SubscriberOptions options_;
  std::vector<std::string> endpoints_;
  size_t current_ = 0;
  std::string primary_hint_;  // from the last not_primary answer
  zmq::context_t context_{1};
  zmq::socket_t socket_;
  std::unique_ptr<ConnectionWatch> watch_;  // after socket_: destroyed before it
  v1::Subscribed subscribed_;
  std::optional<v1::Notice> notice_;
  uint64_t acked_ = 0;
  uint64_t max_epoch_ = 0;  // the newest epoch a delivery came from
  uint64_t stale_deliveries_ = 0;
  // Events received since the last Credit frame, returned once they reach CreditQuantum().
  uint64_t unreturned_credit_ = 0;
  uint64_t CreditQuantum() const { return std::max<uint64_t>(1, options_.window / 4); }
  Steady::time_point last_sent_{};
  Steady::time_point last_heard_ = Steady::now();
};

}  // namespace

Result<std::unique_ptr<Subscriber>> Subscriber::Open(SubscriberOptions options) {
  auto s = std::make_unique<SubscriberImpl>(std::move(options));
  Status status = s->Connect();
  if (!status.ok()) {
    return status;
  }
  return std::unique_ptr<Subscriber>(std::move(s));
}

}  // namespace carehub::client
