#include "not_primary_responder.h"

#include <pthread.h>

#include "carehub/core/log.h"
#include "carehub/v1/wire.pb.h"
#include "zap_handler.h"

namespace carehub::hub {

NotPrimaryResponder::NotPrimaryResponder(zmq::context_t& context, NotPrimaryOptions options,
                                         metrics::Registry* metrics)
    : options_(std::move(options)),
      ingest_(context, zmq::socket_type::router),
      subscribe_(context, zmq::socket_type::router),
      answered_(metrics->GetCounter("carehub_not_primary_answers_total",
                                    "Frames a standby answered with not_primary.")) {}

NotPrimaryResponder::~NotPrimaryResponder() { Stop(); }

Status NotPrimaryResponder::Bind() {
  for (auto [socket, endpoint, domain] :
       {std::tuple{&ingest_, options_.ingest_endpoint, kIngestZapDomain},
        std::tuple{&subscribe_, options_.subscribe_endpoint, kSubscribeZapDomain}}) {
    try {
      socket->set(zmq::sockopt::linger, 0);
      socket->set(zmq::sockopt::router_mandatory, 1);
      MakeCurveServer(*socket, options_.curve_secret_key, domain);
      socket->bind(endpoint);
    } catch (const zmq::error_t& e) {
      return Status::Error("bind_failed", "cannot bind " + endpoint + ": " + e.what());
    }
  }
  return Status::Ok();
}

void NotPrimaryResponder::Start() {
  thread_ = std::thread([this] { Run(); });
}

void NotPrimaryResponder::Stop() {
  stop_.store(true);
  if (thread_.joinable()) {
    thread_.join();
  }
}

void NotPrimaryResponder::Answer(zmq::socket_t& socket, bool ingest) {
  for (int n = 0; n < 256; ++n) {
    std::vector<zmq::message_t> parts;
    if (!zmq::recv_multipart(socket, std::back_inserter(parts), zmq::recv_flags::dontwait)) {
      return;
    }
    if (parts.size() != 2) {
      continue;
    }
    v1::Frame in;
    uint64_t batch_id = 0;
    bool subscribe = false;
    if (in.ParseFromArray(parts[1].data(), static_cast<int>(parts[1].size()))) {
      batch_id = in.has_publish() ? in.publish().batch_id() : 0;
      subscribe = in.has_subscribe();
    }
    const std::string& primary = ingest ? options_.primary_ingest : options_.primary_subscribe;
    v1::Frame out;
    out.set_version(v1::PROTOCOL_VERSION_1);
    auto* error = out.mutable_error();
    error->set_code("not_primary");
    error->set_message("this hub is a standby" +
                       (primary.empty() ? std::string("") : "; the primary is at " + primary));
    error->set_batch_id(batch_id);
    error->set_fatal(subscribe);
    error->set_primary_endpoint(primary);
    std::string bytes = out.SerializeAsString();
    try {
      if (socket.send(parts[0], zmq::send_flags::sndmore | zmq::send_flags::dontwait)) {
        (void)socket.send(zmq::buffer(bytes), zmq::send_flags::dontwait);
      }
    } catch (const zmq::error_t&) {
    }
    answered_.Inc();
  }
}

void NotPrimaryResponder::Run() {
  pthread_setname_np(pthread_self(), "carehub-standby");
  while (!stop_.load()) {
    zmq::pollitem_t items[] = {{ingest_.handle(), 0, ZMQ_POLLIN, 0},
                               {subscribe_.handle(), 0, ZMQ_POLLIN, 0}};
    try {
      zmq::poll(items, 2, std::chrono::milliseconds(100));
    } catch (const zmq::error_t& e) {
      if (e.num() == EINTR) {
        continue;
      }
      Logger("hub")->error("standby responder poll failed: {}", e.what());
      return;
    }
    if (items[0].revents & ZMQ_POLLIN) {
      Answer(ingest_, true);
    }
    if (items[1].revents & ZMQ_POLLIN) {
      Answer(subscribe_, false);
    }
  }
  ingest_.close();
  subscribe_.close();
}

}  // namespace carehub::hub
