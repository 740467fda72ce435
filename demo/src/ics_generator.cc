#include "carehub/demo/ics_generator.h"

#include <algorithm>
#include <cmath>
#include <ctime>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <sstream>
#include <vector>

#include "carehub/analytics/indicators.h"
#include "carehub/core/synthetic.h"

namespace carehub::demo {
namespace {

using analytics::Fact;

constexpr int64_t kDay = 86'400;
constexpr int64_t kHour = 3'600;

// Organisations of the demo ICS (real ODS codes, used for realism only).
constexpr char kLeeds[] = "RR8";          // Leeds Teaching Hospitals
constexpr char kMidYorks[] = "RXF";       // Mid Yorkshire Teaching
constexpr char kCommunity[] = "RY6";      // Leeds Community Healthcare
constexpr char kMentalHealth[] = "RGD";   // Leeds and York Partnership
constexpr char kCouncil[] = "E08000035";  // Leeds City Council adult social care
// GP extracts are collected by the ICB's GP data service and published under its code.
constexpr char kGpPublisher[] = "QWO";

struct Pcn {
  const char* name;
  std::vector<std::string> practices;
};

// The first three PCNs are those of config/agreements.yaml (the practices sharing with RR8 for
// direct care); the others are only in the analytics feed.
std::vector<Pcn> Pcns() {
  return {{"leeds-central-pcn", {"M85001", "M85002", "B86003", "B86030", "B86031"}},
          {"leeds-north-pcn", {"B86025", "B83005", "B86032", "B86033", "B86034"}},
          {"leeds-south-pcn", {"B85004", "B87012", "B82018", "B86035", "B86036"}},
          {"leeds-west-pcn", {"B86037", "B86038", "B86039", "B86040", "B86041"}},
          {"leeds-east-pcn", {"B86042", "B86043", "B86044", "B86045", "B86046"}},
          {"seacroft-pcn", {"B86047", "B86048", "B86049", "B86050", "B86051"}}};
}

const char* const kFamily[] = {"SMITH",   "JONES",  "TAYLOR", "BROWN", "WILLIAMS", "WILSON",
                               "JOHNSON", "DAVIES", "PATEL",  "KHAN",  "WRIGHT",   "WALKER"};
const char* const kGiven[] = {"OLIVIA", "AMELIA", "ISLA",     "AVA", "NOAH",
                              "OLIVER", "GEORGE", "MUHAMMAD", "LEO", "ARTHUR",
                              "SARAH",  "DAVID",  "MARGARET", "JOHN"};
constexpr char kPostcodeLetters[] = "ABDEFGHJLNPQRSTUWXYZ";

struct Person {
  std::string nhs;
  std::string practice;
  std::string birth;  // YYYY-MM-DD
  char sex = 'F';
  std::string postcode;
  std::string family;
  std::string given;
  int age = 0;
  bool opted_out = false;
};

std::string FormatTime(int64_t t, const char* format) {
  const time_t tt = static_cast<time_t>(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[40];
  std::strftime(buf, sizeof(buf), format, &tm);
  return buf;
}
std::string Iso(int64_t t) { return FormatTime(t, "%Y-%m-%dT%H:%M:%SZ"); }
std::string Hl7Time(int64_t t) { return FormatTime(t, "%Y%m%d%H%M%S") + "+0000"; }

// Breaks the check digit: the adapters refuse the record (invalid_nhs_number).
std::string Corrupt(const std::string& nhs) {
  std::string bad = nhs;
  bad[9] = static_cast<char>('0' + (bad[9] - '0' + 1) % 10);
  return bad;
}

// What a record's feed got wrong or did not know (issue 21), so the ground truth's
// data-quality counts and facts match what the hub and analytics make of it.
struct RecordQuality {
  bool unidentified = false;      // no NHS number: PID-32 03, local number only
  bool foreign_postcode = false;  // overseas visitor
  bool non_ods_practice = false;  // PD1-3 a practice name and local code, no ODS code
};

class Generator {
 public:
  Generator(const IcsOptions& options, std::filesystem::path out)
      : options_(options), out_(std::move(out)), rng_(options.seed) {
    end_ = options_.quarter_start + options_.quarter_days * kDay;
  }

  Result<IcsSummary> Run();

 private:
  double Uniform() { return std::uniform_real_distribution<double>(0, 1)(rng_); }
  int64_t UniformInt(int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng_);
  }
  bool Chance(double p) { return Uniform() < p; }
  int64_t Count(double per_250k) {
    return std::llround(per_250k * options_.volume * options_.patients / 250'000.0);
  }
  // A time in working hours on a random day of the quarter.
  int64_t DayTime(int64_t day_start) { return day_start + 8 * kHour + UniformInt(0, 10 * 60) * 60; }
  int64_t RandomTime() {
    return DayTime(options_.quarter_start + UniformInt(0, options_.quarter_days - 1) * kDay);
  }
  bool InQuarter(int64_t t) const { return t >= options_.quarter_start && t < end_; }

  void MakePopulation();
  uint32_t PickPatient(int weights_index) {
    return static_cast<uint32_t>(pickers_[weights_index](rng_));
  }

  // Records a valid event in the truth (unless the patient opted out and is identified: the
  // opt-out cannot apply to a record without an NHS number) and the summary.
  void Truth(uint32_t patient, const std::string& type, int64_t occurred,
             const std::string& publisher, const std::string& site, const Fact* referral = nullptr,
             const RecordQuality& quality = RecordQuality());

  void Hl7(const std::string& trust, const std::string& trigger, uint32_t patient,
           const std::string& visit, char patient_class, const std::string& method,
           int64_t event_time, int64_t admit, int64_t discharge, bool invalid);
  void CsvActivity(const std::string& folder, uint32_t patient, const std::string& publisher,
                   const std::string& site, const std::string& kind, int64_t start, bool invalid);
  void FhirEncounter(uint32_t patient, const std::string& kind, int64_t start, bool invalid);

  struct Referral {
    std::string id;
    uint32_t patient = 0;
    std::string requester;
    std::string performer;
    std::string specialty;
    int64_t authored = 0;
  };
  void ReferralJourney(Referral referral);
  void ReferralStep(const Referral& r, const std::string& status, int64_t at, int64_t appointment);
  std::string CsvFolderOf(const std::string& org) const;

  void ActivityAndReferrals();
  Status WriteAll();

  IcsOptions options_;
  std::filesystem::path out_;
  std::mt19937_64 rng_;
  int64_t end_ = 0;
  std::vector<Person> people_;
  std::vector<std::discrete_distribution<uint32_t>> pickers_;
  std::map<std::string, std::string> pcn_of_;
  std::map<std::string, int64_t> list_sizes_;
  std::map<std::string, double> follow_up_share_;  // per practice, to make the chart vary

  std::vector<Fact> truth_;
  IcsSummary summary_;
  std::map<std::string, std::vector<std::string>> hl7_;  // trust -> messages
  // folder -> file name -> rows (header written separately).
  std::map<std::string, std::map<std::string, std::vector<std::string>>> csv_;
  std::vector<nlohmann::json> fhir_entries_;
  std::vector<std::string> fhir_entry_referral_;  // "" for encounters
  uint64_t counter_ = 0;
};

void Generator::MakePopulation() {
  std::vector<std::string> practices;
  for (const Pcn& pcn : Pcns()) {
    for (const std::string& p : pcn.practices) {
      practices.push_back(p);
      pcn_of_[p] = pcn.name;
    }
  }
  std::vector<double> weights;
  for (size_t i = 0; i < practices.size(); ++i) {
    weights.push_back(0.5 + Uniform());
    follow_up_share_[practices[i]] = 0.25 + 0.5 * Uniform();
  }
  std::discrete_distribution<size_t> practice_pick(weights.begin(), weights.end());
  // Age bands (lower bound, upper bound, share) roughly as England's population.
  struct Band {
    int lo, hi;
    double share;
  };
  const std::vector<Band> bands = {{0, 4, 6},   {5, 17, 15}, {18, 44, 36}, {45, 64, 25},
                                   {65, 74, 9}, {75, 84, 6}, {85, 99, 3}};
  std::vector<double> band_shares;
  for (const Band& b : bands) {
    band_shares.push_back(b.share);
  }
  std::discrete_distribution<size_t> band_pick(band_shares.begin(), band_shares.end());
  people_.resize(options_.patients);
  for (uint32_t i = 0; i < options_.patients; ++i) {
    Person& p = people_[i];
    p.nhs = SyntheticNhsNumber(i);
    p.practice = practices[practice_pick(rng_)];
    ++list_sizes_[p.practice];
    const Band& band = bands[band_pick(rng_)];
    p.age = static_cast<int>(UniformInt(band.lo, band.hi));
    const int64_t born = options_.quarter_start - static_cast<int64_t>(p.age) * 365 * kDay -
                         UniformInt(1, 364) * kDay;
    p.birth = FormatTime(born, "%Y-%m-%d");
    p.sex = Chance(0.5) ? 'F' : 'M';
    const int district = 1 +
                         static_cast<int>(std::hash<std::string>{}(pcn_of_[p.practice]) % 6) * 3 +
                         static_cast<int>(UniformInt(0, 2));
    p.postcode = "LS" + std::to_string(district) + " " + std::to_string(UniformInt(1, 9)) +
                 kPostcodeLetters[UniformInt(0, 19)] + kPostcodeLetters[UniformInt(0, 19)];
    p.family = kFamily[UniformInt(0, 11)];
    p.given = kGiven[UniformInt(0, 13)];
    p.opted_out = Chance(0.02);
    summary_.opted_out_patients += p.opted_out ? 1 : 0;
  }
  // Who uses which service: 0 everyone, 1 weighted to the old and the very young, 2 weighted to
  // the old (admissions, community care), 3 working age (mental health).
  auto weigh = [this](auto fn) {
    std::vector<double> w;
    w.reserve(people_.size());
    for (const Person& p : people_) {
      w.push_back(fn(p.age));
    }
    pickers_.emplace_back(w.begin(), w.end());
  };
  weigh([](int) { return 1.0; });
  weigh([](int age) { return age < 5 ? 1.6 : age >= 75 ? 2.2 : age >= 65 ? 1.4 : 1.0; });
  weigh([](int age) {
    return age >= 85 ? 6.0 : age >= 75 ? 4.0 : age >= 65 ? 2.5 : age < 5 ? 1.2 : 0.6;
  });
  weigh([](int age) { return age >= 18 && age < 65 ? 1.5 : 0.3; });
}

void Generator::Truth(uint32_t patient, const std::string& type, int64_t occurred,
                      const std::string& publisher, const std::string& site, const Fact* referral,
                      const RecordQuality& quality) {
  ++summary_.events;
  ++summary_.events_by_source_type[publisher + " " + type];
  const Person& p = people_[patient];
  if (p.opted_out && !quality.unidentified) {
    ++summary_.withheld_events;
    return;
  }
  summary_.unidentified_events += quality.unidentified ? 1 : 0;
  summary_.overseas_events += quality.foreign_postcode ? 1 : 0;
  summary_.non_ods_practice_events += quality.non_ods_practice ? 1 : 0;
  Fact f;
  if (referral != nullptr) {
    f = *referral;
  }
  // An unidentified patient reaches secondary use counted but unlinkable: no key, no birth date
  // (the demo's unidentified records carry none), no practice.
  f.patient = quality.unidentified ? "" : p.nhs;
  f.type = type;
  f.occurred = occurred;
  f.publisher_ods = publisher;
  f.site_ods = site;
  const bool practice_known = !quality.unidentified && !quality.non_ods_practice;
  f.practice = practice_known ? p.practice : "";
  f.birth_ym = quality.unidentified ? "" : p.birth.substr(0, 7);
  // The same definitions carehub::MeasureDataQuality applies to the delivered event.
  f.dq_known = true;
  f.verified_nhs_number = !quality.unidentified;
  f.valid_postcode = !quality.unidentified && !quality.foreign_postcode;
  f.valid_practice = practice_known;
  f.valid_codes = true;
  truth_.push_back(std::move(f));
}

void Generator::Hl7(const std::string& trust, const std::string& trigger, uint32_t patient,
                    const std::string& visit, char patient_class, const std::string& method,
                    int64_t event_time, int64_t admit, int64_t discharge, bool invalid) {
  const Person& p = people_[patient];
  const std::string id = trust + std::to_string(100'000'000 + ++counter_);
  // Real feeds (issue 21), at rates seen in emergency care data: about 2% of ED attendances are
  // registered before the patient is identified (no NHS number, trace required), about 1% are
  // overseas visitors, and about 0.5% of PAS records carry a practice name without its ODS code.
  RecordQuality quality;
  if (!invalid) {
    const bool ed_arrival = trigger == "A04" && patient_class == 'E';
    quality.unidentified = ed_arrival && Chance(0.02);
    quality.foreign_postcode = !quality.unidentified && ed_arrival && Chance(0.01);
    quality.non_ods_practice = !quality.unidentified && Chance(0.005);
  }
  std::ostringstream m;
  m << "MSH|^~\\&|PAS|" << trust << "|CAREHUB|QWO|" << Hl7Time(event_time) << "||ADT^" << trigger
    << "^ADT_" << (trigger == "A04" ? "A01" : trigger) << "|" << id << "|P|2.4\r";
  m << "EVN|" << trigger << "|" << Hl7Time(event_time) << "\r";
  if (quality.unidentified) {
    // PID-3 the ED's temporary number, PID-5 "UNKNOWN", PID-32 03 (trace required).
    m << "PID|1||" << trust << "U" << std::to_string(700'000 + counter_) << "^^^" << trust
      << "^MR||UNKNOWN^" << (p.sex == 'F' ? "FEMALE" : "MALE") << "|||" << p.sex
      << "||||||||||||||||||||||||03\r";
  } else {
    m << "PID|1||" << (invalid ? Corrupt(p.nhs) : p.nhs) << "^^^NHS^NH~" << trust
      << std::to_string(5'000'000 + patient) << "^^^" << trust << "^MR||" << p.family << "^"
      << p.given << "^^^^^L||" << p.birth.substr(0, 4) << p.birth.substr(5, 2)
      << p.birth.substr(8, 2) << "|" << p.sex << "|||"
      << (quality.foreign_postcode ? "12 Rue de Rivoli^^Paris^^75004^FRA^H"
                                   : "1 Park Row^^Leeds^^" + p.postcode + "^^H")
      << "\r";
    if (quality.non_ods_practice) {
      m << "PD1|||" << p.practice << " SURGERY^^^^^^^^^LOCAL-" << p.practice.substr(1) << "\r";
    } else {
      m << "PD1|||PRACTICE^^" << p.practice << "\r";
    }
  }
  m << "PV1|1|" << patient_class << "|"
    << (patient_class == 'E' ? "ED" : "WARD" + std::to_string(1 + patient % 30)) << "^^^" << trust
    << "|" << method << "||||||" << (patient_class == 'E' ? "180" : "300") << "|||||||||" << visit
    << "|||||||||||||||||";
  m << (discharge != 0 ? "19" : "") << "||||||||" << Hl7Time(admit) << "|"
    << (discharge != 0 ? Hl7Time(discharge) : "");
  std::string text = m.str();
  hl7_[trust].push_back(text);
  ++summary_.records_by_output["hl7/" + trust + ".hl7"];
  if (invalid) {
    ++summary_.invalid;
    return;
  }
  if (Chance(0.01)) {  // the PAS resends after a lost ACK
    hl7_[trust].push_back(text);
    ++summary_.resends;
  }
  std::string type;
  if (trigger == "A03") {
    type = "activity.discharge";
  } else if (trigger == "A04") {
    type = "activity.ae_attendance";
  } else {
    type = method == "21" ? "activity.emergency_admission" : "activity.elective_admission";
  }
  Truth(patient, type, event_time, trust, trust, nullptr, quality);
}

std::string Generator::CsvFolderOf(const std::string& org) const {
  return org.size() == 6 ? "gp" : org;
}

void Generator::CsvActivity(const std::string& folder, uint32_t patient,
                            const std::string& publisher, const std::string& site,
                            const std::string& kind, int64_t start, bool invalid) {
  const Person& p = people_[patient];
  const std::string record = folder + "-" + std::to_string(++counter_);
  std::ostringstream row;
  row << record << "," << (invalid ? Corrupt(p.nhs) : p.nhs) << "," << p.birth << "," << p.sex
      << "," << p.postcode << "," << p.practice << "," << site << "," << kind << "," << Iso(start)
      << "," << Iso(start + 15 * 60);
  const std::string file = publisher + "-activity-" + FormatTime(start, "%G-W%V") + ".csv";
  csv_[folder][file].push_back(row.str());
  ++summary_.records_by_output["csv/" + folder];
  if (invalid) {
    ++summary_.invalid;
    return;
  }
  Truth(patient, "activity." + kind, start, publisher, site);
}

void Generator::FhirEncounter(uint32_t patient, const std::string& kind, int64_t start,
                              bool invalid) {
  const Person& p = people_[patient];
  const std::string ods_system = "https://fhir.nhs.uk/Id/ods-organization-code";
  nlohmann::json patient_json = {
      {"resourceType", "Patient"},
      {"id", "p"},
      {"identifier",
       {{{"system", "https://fhir.nhs.uk/Id/nhs-number"},
         {"value", invalid ? Corrupt(p.nhs) : p.nhs}}}},
      {"birthDate", p.birth},
      {"gender", p.sex == 'F' ? "female" : "male"},
      {"address", {{{"postalCode", p.postcode}}}},
      {"generalPractitioner", {{{"identifier", {{"system", ods_system}, {"value", p.practice}}}}}}};
  nlohmann::json encounter = {
      {"resourceType", "Encounter"},
      {"id", "ry6-enc-" + std::to_string(++counter_)},
      {"contained", {patient_json}},
      {"status", "finished"},
      {"class", {{"system", "http://terminology.hl7.org/CodeSystem/v3-ActCode"}, {"code", "HH"}}},
      {"type",
       {{{"coding",
          {{{"system", "https://carehub.nhs.uk/CodeSystem/activity-kind"}, {"code", kind}}}}}}},
      {"subject", {{"reference", "#p"}}},
      {"period", {{"start", Iso(start)}, {"end", Iso(start + 30 * 60)}}},
      {"serviceProvider", {{"identifier", {{"system", ods_system}, {"value", kCommunity}}}}}};
  fhir_entries_.push_back(
      {{"resource", encounter}, {"request", {{"method", "POST"}, {"url", "Encounter"}}}});
  fhir_entry_referral_.push_back("");
  ++summary_.records_by_output["fhir/RY6"];
  if (invalid) {
    ++summary_.invalid;
    return;
  }
  Truth(patient, "activity." + kind, start, kCommunity, kCommunity);
}

void Generator::ReferralStep(const Referral& r, const std::string& status, int64_t at,
                             int64_t appointment) {
  const Person& p = people_[r.patient];
  // Created and sent by the requester; the rest by the provider that received it.
  const bool by_requester = status == "created" || status == "sent";
  const std::string publisher_org = by_requester ? r.requester : r.performer;
  const std::string publisher = publisher_org.size() == 6 ? kGpPublisher : publisher_org;
  const std::string site = publisher_org;
  Fact fact;
  fact.referral_id = r.id;
  fact.requester_ods = r.requester;
  fact.performer_ods = r.performer;
  fact.authored = r.authored;
  fact.appointment = appointment;
  if (publisher == kCommunity) {
    const std::string ods_system = "https://fhir.nhs.uk/Id/ods-organization-code";
    nlohmann::json patient_json = {
        {"resourceType", "Patient"},
        {"id", "p"},
        {"identifier", {{{"system", "https://fhir.nhs.uk/Id/nhs-number"}, {"value", p.nhs}}}},
        {"birthDate", p.birth},
        {"gender", p.sex == 'F' ? "female" : "male"},
        {"address", {{{"postalCode", p.postcode}}}},
        {"generalPractitioner",
         {{{"identifier", {{"system", ods_system}, {"value", p.practice}}}}}}};
    nlohmann::json request = {
        {"resourceType", "ServiceRequest"},
        {"id", r.id},
        {"contained", {patient_json}},
        {"status", "active"},
        {"intent", "order"},
        {"priority", "routine"},
        {"subject", {{"reference", "#p"}}},
        {"authoredOn", Iso(r.authored)},
        {"requester", {{"identifier", {{"system", ods_system}, {"value", r.requester}}}}},
        {"performer", {{{"identifier", {{"system", ods_system}, {"value", r.performer}}}}}},
        {"performerType", {{"coding", {{{"code", r.specialty}}}}}}};
    nlohmann::json task = {{"resourceType", "Task"},
                           {"id", r.id + "-" + status},
                           {"intent", "order"},
                           {"focus", {{"reference", "urn:uuid:sr-" + r.id}}},
                           {"lastModified", Iso(at)}};
    if (status == "booked" || status == "seen") {
      task["status"] = "in-progress";
      task["businessStatus"] = {{"coding", {{{"code", status}}}}};
      task["executionPeriod"] = {{"start", Iso(appointment)}};
    } else {
      task["status"] = status;  // accepted, rejected, completed
    }
    fhir_entries_.push_back({{"fullUrl", "urn:uuid:sr-" + r.id},
                             {"resource", request},
                             {"request", {{"method", "POST"}, {"url", "ServiceRequest"}}}});
    fhir_entry_referral_.push_back(r.id);
    fhir_entries_.push_back({{"fullUrl", "urn:uuid:task-" + r.id + "-" + status},
                             {"resource", task},
                             {"request", {{"method", "POST"}, {"url", "Task"}}}});
    fhir_entry_referral_.push_back(r.id);
    ++summary_.records_by_output["fhir/RY6"];
  } else {
    const std::string folder = CsvFolderOf(publisher_org);
    std::ostringstream row;
    row << r.id << "," << p.nhs << "," << p.birth << "," << p.sex << "," << p.postcode << ","
        << p.practice << "," << r.requester << "," << r.performer << "," << r.specialty
        << ",routine," << status << "," << Iso(r.authored) << "," << Iso(at) << ","
        << (appointment != 0 ? Iso(appointment) : "");
    const std::string file = publisher + "-referrals-" + FormatTime(at, "%G-W%V") + ".csv";
    csv_[folder][file].push_back(row.str());
    ++summary_.records_by_output["csv/" + folder];
  }
  Truth(r.patient, "referral." + status, at, publisher, site, &fact);
}

void Generator::ReferralJourney(Referral r) {
  struct Provider {
    double reject;
    double mean_wait_days;
  };
  static const std::map<std::string, Provider> kProviders = {{kLeeds, {0.08, 45}},
                                                             {kMidYorks, {0.10, 60}},
                                                             {kCommunity, {0.05, 12}},
                                                             {kMentalHealth, {0.20, 30}},
                                                             {kCouncil, {0.15, 20}}};
  const Provider& provider = kProviders.at(r.performer);
  r.id = "RF" + std::to_string(10'000'000 + ++counter_);
  ReferralStep(r, "created", r.authored, 0);
  const int64_t sent = r.authored + UniformInt(0, 2 * 24) * kHour;
  if (!InQuarter(sent)) {
    return;
  }
  ReferralStep(r, "sent", sent, 0);
  const int64_t decided = sent + UniformInt(1, 5) * kDay + UniformInt(0, 8) * kHour;
  if (!InQuarter(decided)) {
    return;
  }
  if (Chance(provider.reject)) {
    ReferralStep(r, "rejected", decided, 0);
    return;
  }
  ReferralStep(r, "accepted", decided, 0);
  const int64_t booked = decided + UniformInt(0, 3) * kDay + kHour;
  const double wait = std::gamma_distribution<double>(3.0, provider.mean_wait_days / 3.0)(rng_);
  const int64_t appointment =
      DayTime(r.authored - r.authored % kDay +
              std::max<int64_t>(std::llround(wait), (booked - r.authored) / kDay + 1) * kDay);
  if (!InQuarter(booked)) {
    return;
  }
  ReferralStep(r, "booked", booked, appointment);
  if (!InQuarter(appointment + kHour)) {
    return;
  }
  ReferralStep(r, "seen", appointment + kHour, appointment);
  const int64_t completed = appointment + UniformInt(0, 20) * kDay + 2 * kHour;
  if (InQuarter(completed)) {
    ReferralStep(r, "completed", completed, 0);
  }
}

void Generator::ActivityAndReferrals() {
  const int64_t q0 = options_.quarter_start;
  auto trust = [this] { return Chance(0.7) ? std::string(kLeeds) : std::string(kMidYorks); };
  auto hl7_invalid = [this] { return Chance(0.002); };
  // A&E attendances.
  for (int64_t i = 0, n = Count(24'000); i < n; ++i) {
    const uint32_t p = PickPatient(1);
    const int64_t t = q0 + UniformInt(0, options_.quarter_days * 24 * 60 - 1) * 60;
    const std::string visit = "V" + std::to_string(++counter_);
    Hl7(trust(), "A04", p, visit, 'E', "", t, t, 0, hl7_invalid());
  }
  // Admissions and their discharges; discharges may be followed up in the community.
  struct Discharge {
    uint32_t patient;
    int64_t at;
    std::string trust;
  };
  std::vector<Discharge> discharges;
  auto admit = [&](bool emergency) {
    const uint32_t p = PickPatient(2);
    const std::string t = trust();
    const int64_t at =
        emergency ? q0 + UniformInt(0, options_.quarter_days * 24 * 60 - 1) * 60 : RandomTime();
    const std::string visit = "V" + std::to_string(++counter_);
    const bool invalid = hl7_invalid();
    Hl7(t, "A01", p, visit, 'I', emergency ? "21" : "11", at, at, 0, invalid);
    const int64_t los = emergency
                            ? std::llround(std::exponential_distribution<double>(1.0 / 5.0)(rng_))
                            : UniformInt(0, 3);
    const int64_t out = at + los * kDay + UniformInt(2, 10) * kHour;
    if (!invalid && InQuarter(out)) {
      Hl7(t, "A03", p, visit, 'I', emergency ? "21" : "11", out, at, out, false);
      discharges.push_back({p, out, t});
    }
  };
  for (int64_t i = 0, n = Count(6'000); i < n; ++i) {
    admit(true);
  }
  for (int64_t i = 0, n = Count(4'000); i < n; ++i) {
    admit(false);
  }
  // GP appointments, attended and missed.
  for (int64_t i = 0, n = Count(60'000); i < n; ++i) {
    const uint32_t p = PickPatient(1);
    CsvActivity("gp", p, kGpPublisher, people_[p].practice, "gp_consultation", RandomTime(),
                Chance(0.001));
  }
  for (int64_t i = 0, n = Count(3'600); i < n; ++i) {
    const uint32_t p = PickPatient(0);
    CsvActivity("gp", p, kGpPublisher, people_[p].practice, "did_not_attend", RandomTime(), false);
  }
  // Outpatient clinics: the trusts' daily clinic-outcome extracts.
  for (int64_t i = 0, n = Count(32'000); i < n; ++i) {
    const uint32_t p = PickPatient(1);
    const std::string t = trust();
    const bool dna = Chance(t == kLeeds ? 0.07 : 0.09);
    CsvActivity(t, p, t, t, dna ? "did_not_attend" : "outpatient_attendance", RandomTime(), false);
  }
  // Community nursing and therapy (FHIR), mental health (CSV), social care (CSV).
  for (int64_t i = 0, n = Count(24'000); i < n; ++i) {
    const uint32_t p = PickPatient(2);
    FhirEncounter(p, Chance(0.05) ? "did_not_attend" : "community_contact", RandomTime(),
                  Chance(0.001));
  }
  for (int64_t i = 0, n = Count(6'500); i < n; ++i) {
    const uint32_t p = PickPatient(3);
    CsvActivity(kMentalHealth, p, kMentalHealth, kMentalHealth,
                Chance(0.11) ? "did_not_attend" : "mental_health_contact", RandomTime(), false);
  }
  for (int64_t i = 0, n = Count(1'500); i < n; ++i) {
    const uint32_t p = PickPatient(2);
    CsvActivity(kCouncil, p, kCouncil, kCouncil, "social_care_assessment", RandomTime(), false);
  }
  // After a discharge: a GP or community follow-up (at a practice-dependent rate), sometimes a
  // community referral from the trust and a social care assessment.
  for (const Discharge& d : discharges) {
    const Person& person = people_[d.patient];
    if (Chance(follow_up_share_[person.practice])) {
      const int64_t at = DayTime(d.at - d.at % kDay + UniformInt(1, 10) * kDay);
      if (InQuarter(at)) {
        if (Chance(0.5)) {
          CsvActivity("gp", d.patient, kGpPublisher, person.practice, "gp_consultation", at, false);
        } else {
          FhirEncounter(d.patient, "community_contact", at, false);
        }
      }
    }
    if (person.age >= 65 && Chance(0.3)) {
      ReferralJourney({"", d.patient, d.trust, kCommunity, "district_nursing", d.at - kHour});
    }
    if (person.age >= 75 && Chance(0.1)) {
      const int64_t at = DayTime(d.at - d.at % kDay + UniformInt(0, 5) * kDay);
      if (InQuarter(at)) {
        CsvActivity(kCouncil, d.patient, kCouncil, kCouncil, "social_care_assessment", at, false);
      }
    }
  }
  // GP referrals.
  for (int64_t i = 0, n = Count(9'000); i < n; ++i) {
    const uint32_t p = PickPatient(1);
    const double u = Uniform();
    std::string performer = u < 0.45   ? kLeeds
                            : u < 0.65 ? kMidYorks
                            : u < 0.80 ? kCommunity
                            : u < 0.90 ? kMentalHealth
                                       : kCouncil;
    static const std::map<std::string, std::string> kSpecialty = {
        {kLeeds, "cardiology"},
        {kMidYorks, "trauma_orthopaedics"},
        {kCommunity, "physiotherapy"},
        {kMentalHealth, "adult_mental_health"},
        {kCouncil, "adult_social_care"}};
    ReferralJourney(
        {"", p, people_[p].practice, performer, kSpecialty.at(performer), RandomTime()});
  }
}

Status WriteText(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc | std::ios::binary);
  out << text;
  if (!out.flush()) {
    return Status::Error("write_failed", "cannot write " + path.string());
  }
  return Status::Ok();
}

Status Generator::WriteAll() {
  std::error_code ec;
  for (const char* dir : {"hl7", "fhir/RY6", "csv"}) {
    std::filesystem::remove_all(out_ / dir, ec);
    std::filesystem::create_directories(out_ / dir, ec);
    if (ec) {
      return Status::Error("write_failed", "cannot create " + (out_ / dir).string());
    }
  }
  for (auto& [trust, messages] : hl7_) {
    std::string text;
    for (const std::string& m : messages) {
      text += m + "\n";
    }
    CAREHUB_RETURN_IF_ERROR(WriteText(out_ / "hl7" / (trust + ".hl7"), text));
  }
  const std::string activity_header =
      "record_id,nhs_number,birth_date,sex,postcode,registered_gp_ods,practice_ods,contact_type,"
      "appointment_start,appointment_end\n";
  const std::string referral_header =
      "referral_id,nhs_number,birth_date,sex,postcode,registered_gp_ods,requester_ods,"
      "performer_ods,specialty,priority,status,authored_at,status_at,appointment_at\n";
  for (auto& [folder, files] : csv_) {
    std::filesystem::create_directories(out_ / "csv" / folder, ec);
    bool resent = false;
    for (auto& [name, rows] : files) {
      std::string text =
          name.find("-referrals-") != std::string::npos ? referral_header : activity_header;
      for (const std::string& row : rows) {
        text += row + "\n";
      }
      CAREHUB_RETURN_IF_ERROR(WriteText(out_ / "csv" / folder / name, text));
      // One extract per source is sent twice (an operator re-runs yesterday's job).
      if (!resent && name.find("-activity-") != std::string::npos) {
        resent = true;
        const std::string again = name.substr(0, name.size() - 4) + "-resent.csv";
        CAREHUB_RETURN_IF_ERROR(WriteText(out_ / "csv" / folder / again, text));
        summary_.resends += static_cast<int64_t>(rows.size());
      }
    }
  }
  // FHIR batch Bundles of up to 200 entries; a ServiceRequest and its Task stay together and a
  // referral appears at most once per Bundle.
  std::vector<nlohmann::json> bundle;
  std::set<std::string> referrals_in_bundle;
  int bundle_no = 0;
  auto flush = [&]() -> Status {
    if (bundle.empty()) {
      return Status::Ok();
    }
    nlohmann::json b = {{"resourceType", "Bundle"}, {"type", "batch"}, {"entry", bundle}};
    char name[32];
    std::snprintf(name, sizeof(name), "bundle-%05d.json", ++bundle_no);
    CAREHUB_RETURN_IF_ERROR(WriteText(out_ / "fhir/RY6" / name, b.dump() + "\n"));
    if (bundle_no % 50 == 7) {  // the community system resends a Bundle after a timeout
      std::snprintf(name, sizeof(name), "bundle-%05d-resent.json", bundle_no);
      CAREHUB_RETURN_IF_ERROR(WriteText(out_ / "fhir/RY6" / name, b.dump() + "\n"));
      summary_.resends += static_cast<int64_t>(bundle.size());
    }
    bundle.clear();
    referrals_in_bundle.clear();
    return Status::Ok();
  };
  for (size_t i = 0; i < fhir_entries_.size(); ++i) {
    const std::string& referral = fhir_entry_referral_[i];
    const bool starts_pair =
        !referral.empty() && (i == 0 || fhir_entry_referral_[i - 1] != referral ||
                              fhir_entries_[i]["resource"]["resourceType"] == "ServiceRequest");
    if (bundle.size() >= 200 ||
        (starts_pair && fhir_entries_[i]["resource"]["resourceType"] == "ServiceRequest" &&
         referrals_in_bundle.count(referral) != 0)) {
      CAREHUB_RETURN_IF_ERROR(flush());
    }
    if (!referral.empty()) {
      referrals_in_bundle.insert(referral);
    }
    bundle.push_back(fhir_entries_[i]);
  }
  CAREHUB_RETURN_IF_ERROR(flush());

  std::string practices = "practice_ods,pcn,registered_patients\n";
  for (const auto& [practice, n] : list_sizes_) {
    practices += practice + "," + pcn_of_[practice] + "," + std::to_string(n) + "\n";
  }
  CAREHUB_RETURN_IF_ERROR(WriteText(out_ / "practices.csv", practices));
  std::string opt_out =
      "# National data opt-out list for the demo ICS (SYNTHETIC: 999-range NHS numbers).\n";
  for (const Person& p : people_) {
    if (p.opted_out) {
      opt_out += p.nhs + "\n";
    }
  }
  CAREHUB_RETURN_IF_ERROR(WriteText(out_ / "national-opt-out.txt", opt_out));

  analytics::Indicators indicators = analytics::ComputeIndicators(truth_);
  nlohmann::json truth_json = indicators.ToJson();
  truth_json["list_sizes"] = list_sizes_;
  nlohmann::json ground = {{"indicators", truth_json},
                           {"summary",
                            {{"patients", options_.patients},
                             {"quarter_start", Iso(options_.quarter_start)},
                             {"quarter_days", options_.quarter_days},
                             {"events", summary_.events},
                             {"resends", summary_.resends},
                             {"invalid", summary_.invalid},
                             {"opted_out_patients", summary_.opted_out_patients},
                             {"withheld_events", summary_.withheld_events},
                             {"unidentified_events", summary_.unidentified_events},
                             {"overseas_events", summary_.overseas_events},
                             {"non_ods_practice_events", summary_.non_ods_practice_events},
                             {"events_by_source_type", summary_.events_by_source_type},
                             {"records_by_output", summary_.records_by_output}}}};
  return WriteText(out_ / "ground-truth.json", ground.dump(1) + "\n");
}

Result<IcsSummary> Generator::Run() {
  if (options_.patients == 0 || options_.patients > 900'000) {
    return Status::Error("bad_options", "patients must be 1..900000");
  }
  std::error_code ec;
  std::filesystem::create_directories(out_, ec);
  if (ec) {
    return Status::Error("write_failed", "cannot create " + out_.string() + ": " + ec.message());
  }
  MakePopulation();
  ActivityAndReferrals();
  Status s = WriteAll();
  if (!s.ok()) {
    return s;
  }
  return summary_;
}

}  // namespace

int64_t LastCompleteQuarterStart(int64_t now_unix, int* days) {
  const time_t t = static_cast<time_t>(now_unix);
  std::tm tm{};
  gmtime_r(&t, &tm);
  int year = tm.tm_year + 1900;
  int quarter = tm.tm_mon / 3 - 1;  // the previous quarter, 0-based
  if (quarter < 0) {
    quarter = 3;
    --year;
  }
  int ignored = 0;
  Result<int64_t> start = ParseQuarter(std::to_string(year) + "Q" + std::to_string(quarter + 1),
                                       days ? days : &ignored);
  return start.ok() ? start.value() : 0;
}

Result<int64_t> ParseQuarter(const std::string& text, int* days) {
  if (text.size() != 6 || text[4] != 'Q' || text[5] < '1' || text[5] > '4') {
    return Status::Error("bad_quarter", "expected YYYYQn, e.g. 2026Q3");
  }
  const int year = std::atoi(text.substr(0, 4).c_str());
  const int q = text[5] - '1';
  auto first_day = [](int y, int month0) {
    std::tm tm{};
    tm.tm_year = y - 1900;
    tm.tm_mon = month0;
    tm.tm_mday = 1;
    return static_cast<int64_t>(timegm(&tm));
  };
  const int64_t start = first_day(year, q * 3);
  const int64_t end = q == 3 ? first_day(year + 1, 0) : first_day(year, q * 3 + 3);
  *days = static_cast<int>((end - start) / kDay);
  return start;
}

Result<IcsSummary> GenerateIcs(const IcsOptions& options, const std::filesystem::path& out_dir) {
  Generator generator(options, out_dir);
  return generator.Run();
}

}  // namespace carehub::demo
