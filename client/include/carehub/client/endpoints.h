#pragma once
// A hub address as clients take it: one ZeroMQ endpoint, or several separated by commas (a
// primary and its standby, docs/replication.md). Clients use one at a time and move to the one a
// standby names in its "not_primary" answer, or to the next when a hub stops answering.

#include <string>
#include <vector>

namespace carehub::client {

// "tcp://a:7400, tcp://b:7400" -> {"tcp://a:7400", "tcp://b:7400"}; spaces around commas are
// dropped; never empty (an empty string gives one empty endpoint, which connect then refuses).
std::vector<std::string> SplitEndpoints(const std::string& endpoints);

}  // namespace carehub::client
