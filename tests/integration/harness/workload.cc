#include "harness/workload.h"

#include <random>

namespace carehub::itest {

SyntheticOptions FixedSyntheticOptions(uint64_t seed, const std::string& id_prefix) {
  SyntheticOptions o;
  o.seed = seed;
  o.id_prefix = id_prefix;
  o.now = std::chrono::system_clock::time_point(std::chrono::seconds(kFixedNowUnix));
  return o;
}

std::vector<InvalidKind> ClockIndependentInvalidKinds() {
  std::vector<InvalidKind> kinds;
  for (int k = 0; k < kInvalidKindCount; ++k) {
    auto kind = static_cast<InvalidKind>(k);
    if (kind != InvalidKind::kFutureOccurredAt && kind != InvalidKind::kOversized) {
      kinds.push_back(kind);
    }
  }
  return kinds;
}

Workload MakeWorkload(const WorkloadOptions& options) {
  auto synth = FixedSyntheticOptions(options.seed, options.id_prefix);
  synth.population = options.population;
  SyntheticGenerator gen(synth);
  // A separate stream for the mix, so the events themselves depend only on the generator seed.
  std::mt19937_64 rng(options.seed * 0x9e3779b97f4a7c15ULL + 17);
  std::uniform_real_distribution<double> unit(0, 1);
  const auto invalid_kinds = ClockIndependentInvalidKinds();

  Workload w;
  w.events.reserve(options.events);
  w.kinds.reserve(options.events);
  w.original.reserve(options.events);
  w.reasons.reserve(options.events);
  std::vector<size_t> firsts;  // indices of first sends of valid events
  firsts.reserve(options.events);
  for (size_t i = 0; i < options.events; ++i) {
    double draw = unit(rng);
    // A resend drawn before anything was sent becomes a first send (not an invalid event).
    const bool resend_draw = draw < options.resend_ratio;
    if (resend_draw && !firsts.empty()) {
      size_t orig = firsts[rng() % firsts.size()];
      w.events.push_back(w.events[orig]);
      w.kinds.push_back(Workload::Kind::kResend);
      w.original.push_back(orig);
      w.reasons.emplace_back();
      ++w.resend_count;
    } else if (!resend_draw && draw < options.resend_ratio + options.invalid_ratio) {
      v1::Event e = gen.Next();
      std::string reason = gen.MakeInvalid(&e, invalid_kinds[rng() % invalid_kinds.size()]);
      w.events.push_back(std::move(e));
      w.kinds.push_back(Workload::Kind::kInvalid);
      w.original.push_back(i);
      w.reasons.push_back(std::move(reason));
      ++w.invalid_count;
    } else {
      w.events.push_back(gen.Next());
      w.kinds.push_back(Workload::Kind::kFirst);
      w.original.push_back(i);
      w.reasons.emplace_back();
      firsts.push_back(i);
      ++w.first_count;
    }
  }
  return w;
}

}  // namespace carehub::itest
