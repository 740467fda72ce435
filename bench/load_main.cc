// carehub-load: the raw ingest load generator on its own, against a running hub.
#include <CLI/CLI.hpp>
#include <cstdio>

#include "ingest_load.h"

int main(int argc, char** argv) {
  carehub::bench::IngestLoadOptions o;
  o.endpoint = "tcp://127.0.0.1:7400";
  CLI::App app{"carehub-load: raw ingest load against a running hub"};
  app.add_option("--endpoint", o.endpoint);
  app.add_option("--events", o.events);
  app.add_option("--connections", o.connections);
  app.add_option("--batch", o.batch_events);
  app.add_option("--window", o.window_batches);
  app.add_option("--resend-ratio", o.resend_ratio);
  app.add_option("--seed", o.seed);
  app.add_option("--rate", o.rate);
  app.add_option("--id-prefix", o.id_prefix);
  CLI11_PARSE(app, argc, argv);
  auto r = carehub::bench::RunIngestLoad(o);
  std::printf(
      "{\"sent\": %lu, \"accepted\": %lu, \"duplicate\": %lu, \"other\": %lu, \"seconds\": %.3f, "
      "\"accepted_per_second\": %.0f, \"sent_per_second\": %.0f, \"ack_p50_ms\": %.2f, "
      "\"ack_p99_ms\": %.2f}\n",
      r.sent, r.accepted, r.duplicate, r.other, r.seconds, r.accepted_per_second(),
      r.sent_per_second(), r.ack_p50_ms, r.ack_p99_ms);
  return 0;
}
