#include "carehub/core/synthetic.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <string_view>
#include <utility>

#include "carehub/core/validation.h"

namespace carehub {
namespace {

// Nine-digit stems 999000000..999999999; every run of ten consecutive stems (last digit 0..9) has
// at most one stem whose check digit would be 10, so each run yields at least nine valid numbers.
constexpr uint32_t kStemBase = 999'000'000;
constexpr uint32_t kValidPerRun = 9;
constexpr uint32_t kRuns = 100'000;
constexpr uint32_t kMaxSyntheticPatients = kValidPerRun * kRuns;

constexpr int64_t kSecondsPerDay = 86'400;
constexpr int64_t kWindowSeconds = 90 * kSecondsPerDay;
// occurred_at is at least this long before `now`, so recorded_at (a few minutes later) is never in
// the future either.
constexpr int64_t kMinAgeSeconds = 10 * 60;

// Stateless mixing so a patient's attributes depend only on (seed, patient index), never on the
// order in which events were drawn.
uint64_t SplitMix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// FNV-1a rather than std::hash, whose values differ between standard libraries.
uint64_t Fnv1a(std::string_view s) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (char c : s) {
    h = (h ^ static_cast<unsigned char>(c)) * 0x100000001b3ULL;
  }
  return h;
}

template <typename T>
struct Weighted {
  uint32_t weight;
  T value;
};

// Real West Yorkshire postcode shapes across Leeds, Bradford, Calderdale, Kirklees and Wakefield.
constexpr std::array<std::string_view, 32> kPostcodes = {
    "LS1 4AP",  "LS2 9JT",  "LS6 1AN",  "LS7 3PD",  "LS8 2LH",  "LS9 7TF",  "LS11 5DT", "LS12 3QE",
    "LS15 8GB", "LS16 6EB", "LS17 7PJ", "LS25 1AA", "LS27 8JX", "LS28 5AT", "LS29 8PD", "BD1 1HY",
    "BD3 9DJ",  "BD5 0NA",  "BD7 1DP",  "BD9 6RJ",  "BD18 3LS", "BD20 6TD", "HX1 1UJ",  "HX3 0PW",
    "HD1 2TA",  "HD4 5RF",  "HD9 1DX",  "WF1 2DD",  "WF8 1PL",  "WF10 4BA", "WF13 1HN", "WF17 5AB"};

// Fictional names and streets; with the 999 NHS numbers they make records that look real to the
// redaction code (names and addresses must never leave under secondary use) but identify nobody.
constexpr std::array<std::string_view, 16> kGivenNames = {
    "Olivia", "Amelia", "Isla", "Ava",   "Mohammed", "Noah", "Oliver", "George",
    "Aisha",  "Zara",   "Jack", "Harry", "Margaret", "Joan", "Arthur", "Kenneth"};
constexpr std::array<std::string_view, 16> kFamilyNames = {
    "Smith", "Hussain", "Shaw",  "Walker", "Wood",      "Khan", "Taylor", "Holroyd",
    "Firth", "Ahmed",   "Brook", "Haigh",  "Sutcliffe", "Ali",  "Wilson", "Thornton"};
constexpr std::array<std::string_view, 12> kStreets = {
    "Church Lane", "Park Road",   "Mill Street", "Station Road", "Moor Lane", "Victoria Road",
    "Green Lane",  "Manor Drive", "Water Lane",  "Hall Road",    "Beck Side", "Chapel Street"};

std::string_view PostTown(std::string_view postcode) {
  switch (postcode[0]) {
    case 'L':
      return "Leeds";
    case 'B':
      return "Bradford";
    case 'H':
      return postcode[1] == 'X' ? "Halifax" : "Huddersfield";
    default:
      return "Wakefield";
  }
}

// Practices patients register with when the publishers list has too few: Leeds (B86), Bradford
// (B83), Calderdale/Kirklees (B85), Wakefield (B87).
constexpr std::array<std::string_view, 6> kExtraPractices = {"B86003", "B86025", "B83005",
                                                             "B85004", "B87012", "B82018"};
// Referral performers when no trust publishes: Leeds, Bradford, Calderdale & Huddersfield, Mid
// Yorks.
constexpr std::array<std::string_view, 4> kDefaultTrusts = {"RR8", "RAE", "RWY", "RXF"};

constexpr std::string_view kSnomed = "http://snomed.info/sct";
constexpr std::string_view kIcd10 = "ICD-10";
constexpr std::string_view kOpcs4 = "OPCS-4";

struct Code {
  std::string_view code;
  std::string_view display;
};

constexpr std::array<Code, 8> kAeComplaints = {{{"29857009", "Chest pain"},
                                                {"21522001", "Abdominal pain"},
                                                {"267036007", "Dyspnoea"},
                                                {"125605004", "Fracture of bone"},
                                                {"271594007", "Syncope"},
                                                {"386661006", "Fever"},
                                                {"62315008", "Diarrhoea"},
                                                {"25064002", "Headache"}}};
constexpr std::array<Code, 8> kAdmissionDiagnoses = {{{"J18.9", "Pneumonia"},
                                                      {"I21.9", "Acute MI"},
                                                      {"J44.1", "COPD exacerbation"},
                                                      {"N39.0", "UTI"},
                                                      {"I50.9", "Heart failure"},
                                                      {"K35.8", "Appendicitis"},
                                                      {"S72.0", "Fractured NOF"},
                                                      {"R07.4", "Chest pain"}}};
constexpr std::array<Code, 5> kElectiveProcedures = {{{"W37.1", "Total hip replacement"},
                                                      {"W40.1", "Total knee replacement"},
                                                      {"C71.2", "Phacoemulsification"},
                                                      {"T20.2", "Inguinal hernia repair"},
                                                      {"H22.1", "Colonoscopy"}}};
constexpr std::array<Code, 8> kGpProblems = {{{"38341003", "Hypertension"},
                                              {"44054006", "Type 2 diabetes"},
                                              {"195967001", "Asthma"},
                                              {"35489007", "Depression"},
                                              {"68566005", "UTI"},
                                              {"54150009", "URTI"},
                                              {"279039007", "Low back pain"},
                                              {"197480006", "Anxiety"}}};
constexpr std::array<Code, 4> kCommunityProcedures = {{{"225358003", "Wound care"},
                                                       {"182777000", "Monitoring of patient"},
                                                       {"386373004", "Nutrition therapy"},
                                                       {"229065009", "Exercise therapy"}}};
constexpr std::array<Code, 3> kSocialCareProcedures = {{{"410606002", "Social service procedure"},
                                                        {"225338004", "Risk assessment"},
                                                        {"711069006", "Care needs assessment"}}};
constexpr std::array<Code, 4> kMentalHealthDiagnoses = {{{"F32.1", "Moderate depressive episode"},
                                                         {"F41.1", "Generalised anxiety"},
                                                         {"F20.9", "Schizophrenia"},
                                                         {"F10.2", "Alcohol dependence"}}};
constexpr std::array<Code, 4> kOutpatientDiagnoses = {{{"I48.9", "Atrial fibrillation"},
                                                       {"M17.1", "Osteoarthritis of knee"},
                                                       {"L40.0", "Psoriasis"},
                                                       {"H25.9", "Senile cataract"}}};
constexpr std::array<Code, 6> kReferralReasons = {{{"29857009", "Chest pain"},
                                                   {"49436004", "Atrial fibrillation"},
                                                   {"239873007", "Osteoarthritis of knee"},
                                                   {"193570009", "Cataract"},
                                                   {"126906006", "Neoplasm of prostate"},
                                                   {"254837009", "Breast cancer"}}};

// NHS Data Dictionary treatment function codes.
constexpr std::array<std::string_view, 8> kAdmittingSpecialties = {"300", "100", "430", "320",
                                                                   "340", "301", "110", "101"};
constexpr std::array<std::string_view, 8> kOutpatientSpecialties = {"320", "330", "110", "130",
                                                                    "502", "101", "340", "300"};

constexpr std::array<Weighted<v1::ActivityKind>, 11> kTrustKinds = {{
    {22, v1::ACTIVITY_KIND_AE_ATTENDANCE},
    {8, v1::ACTIVITY_KIND_EMERGENCY_ADMISSION},
    {5, v1::ACTIVITY_KIND_ELECTIVE_ADMISSION},
    {3, v1::ACTIVITY_KIND_TRANSFER},
    {12, v1::ACTIVITY_KIND_DISCHARGE},
    {28, v1::ACTIVITY_KIND_OUTPATIENT_ATTENDANCE},
    {6, v1::ACTIVITY_KIND_DID_NOT_ATTEND},
    {8, v1::ACTIVITY_KIND_COMMUNITY_CONTACT},
    {4, v1::ACTIVITY_KIND_MENTAL_HEALTH_CONTACT},
    {2, v1::ACTIVITY_KIND_SOCIAL_CARE_ASSESSMENT},
    {2, v1::ACTIVITY_KIND_PRE_ADMISSION},
}};
constexpr std::array<Weighted<v1::ActivityKind>, 3> kPracticeKinds = {{
    {88, v1::ACTIVITY_KIND_GP_CONSULTATION},
    {8, v1::ACTIVITY_KIND_DID_NOT_ATTEND},
    {4, v1::ACTIVITY_KIND_COMMUNITY_CONTACT},
}};
// A local authority (9-character code such as E08000035) publishes social care only.
constexpr std::array<Weighted<v1::ActivityKind>, 1> kLocalAuthorityKinds = {{
    {1, v1::ACTIVITY_KIND_SOCIAL_CARE_ASSESSMENT},
}};

// Practices send and cancel referrals; providers receive and progress them.
constexpr std::array<Weighted<v1::ReferralStatus>, 3> kRequesterStatuses = {{
    {40, v1::REFERRAL_STATUS_CREATED},
    {45, v1::REFERRAL_STATUS_SENT},
    {15, v1::REFERRAL_STATUS_CANCELLED},
}};
constexpr std::array<Weighted<v1::ReferralStatus>, 7> kPerformerStatuses = {{
    {18, v1::REFERRAL_STATUS_RECEIVED},
    {22, v1::REFERRAL_STATUS_ACCEPTED},
    {5, v1::REFERRAL_STATUS_REJECTED},
    {22, v1::REFERRAL_STATUS_BOOKED},
    {18, v1::REFERRAL_STATUS_SEEN},
    {12, v1::REFERRAL_STATUS_COMPLETED},
    {3, v1::REFERRAL_STATUS_CANCELLED},
}};
constexpr std::array<Weighted<v1::ReferralPriority>, 3> kPriorities = {{
    {70, v1::REFERRAL_PRIORITY_ROUTINE},
    {20, v1::REFERRAL_PRIORITY_URGENT},
    {10, v1::REFERRAL_PRIORITY_TWO_WEEK_WAIT},
}};

enum class OrgType { kTrust, kPractice, kLocalAuthority };

OrgType ClassifyOrg(std::string_view ods) {
  if (ods.size() <= 3) {
    return OrgType::kTrust;
  }
  if (ods.size() == 9) {
    return OrgType::kLocalAuthority;
  }
  return OrgType::kPractice;
}

void SetTimestamp(google::protobuf::Timestamp* ts, int64_t seconds) {
  ts->set_seconds(seconds);
  ts->set_nanos(0);
}

std::string Digits(uint64_t value, int width) {
  std::string out(static_cast<size_t>(width), '0');
  for (int i = width - 1; i >= 0 && value > 0; --i) {
    out[static_cast<size_t>(i)] = static_cast<char>('0' + value % 10);
    value /= 10;
  }
  return out;
}

// Proleptic Gregorian date of a day count since 1970-01-01 (H. Hinnant's civil_from_days).
std::string IsoDate(int64_t days) {
  days += 719468;
  const int64_t era = (days >= 0 ? days : days - 146096) / 146097;
  const int64_t doe = days - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  const int64_t d = doy - (153 * mp + 2) / 5 + 1;
  const int64_t m = mp < 10 ? mp + 3 : mp - 9;
  const int64_t y = yoe + era * 400 + (m <= 2 ? 1 : 0);
  return Digits(static_cast<uint64_t>(std::clamp<int64_t>(y, 0, 9999)), 4) + "-" +
         Digits(static_cast<uint64_t>(m), 2) + "-" + Digits(static_cast<uint64_t>(d), 2);
}

void AddCode(google::protobuf::RepeatedPtrField<v1::CodedValue>* list, std::string_view system,
             const Code& code) {
  v1::CodedValue* value = list->Add();
  value->set_system(std::string(system));
  value->set_code(std::string(code.code));
  value->set_display(std::string(code.display));
}

uint64_t Uniform(std::mt19937_64& rng, uint64_t n) { return n == 0 ? 0 : rng() % n; }

bool Chance(std::mt19937_64& rng, double p) {
  return static_cast<double>(rng() >> 11) * 0x1.0p-53 < p;
}

// Own weighted choice rather than std::discrete_distribution, whose output is not specified across
// standard libraries: the same seed should give the same events everywhere.
template <typename T, size_t N>
T Pick(std::mt19937_64& rng, const std::array<Weighted<T>, N>& table) {
  uint64_t total = 0;
  for (const auto& entry : table) {
    total += entry.weight;
  }
  uint64_t r = Uniform(rng, total);
  for (const auto& entry : table) {
    if (r < entry.weight) {
      return entry.value;
    }
    r -= entry.weight;
  }
  return table.back().value;
}

template <typename T, size_t N>
const T& PickOne(std::mt19937_64& rng, const std::array<T, N>& values) {
  return values[Uniform(rng, N)];
}

}  // namespace

std::string SyntheticNhsNumber(uint32_t n) {
  n %= kMaxSyntheticPatients;
  const uint32_t run_start = kStemBase + (n / kValidPerRun) * 10;
  uint32_t wanted = n % kValidPerRun;
  for (uint32_t stem = run_start;; ++stem) {
    std::string digits = std::to_string(stem);
    const int check = NhsNumberCheckDigit(digits);
    if (check < 0) {
      continue;
    }
    if (wanted == 0) {
      digits.push_back(static_cast<char>('0' + check));
      return digits;
    }
    --wanted;
  }
}

SyntheticGenerator::SyntheticGenerator(SyntheticOptions options)
    : options_(std::move(options)), rng_(options_.seed) {
  options_.population = std::clamp<uint32_t>(options_.population, 1, kMaxSyntheticPatients);
  if (options_.publishers.empty()) {
    options_.publishers = SyntheticOptions().publishers;
  }
  for (const std::string& ods : options_.publishers) {
    switch (ClassifyOrg(ods)) {
      case OrgType::kTrust:
        trusts_.push_back(ods);
        break;
      case OrgType::kPractice:
        practices_.push_back(ods);
        break;
      case OrgType::kLocalAuthority:
        break;
    }
  }
  for (std::string_view ods : kExtraPractices) {
    practices_.emplace_back(ods);
  }
  if (trusts_.empty()) {
    trusts_.assign(kDefaultTrusts.begin(), kDefaultTrusts.end());
  }
  now_seconds_ =
      std::chrono::duration_cast<std::chrono::seconds>(options_.now.time_since_epoch()).count();
  last_event_.resize(options_.publishers.size());
}

void SyntheticGenerator::FillPatient(uint32_t index, const std::string& publisher,
                                     v1::Patient* patient) const {
  const uint64_t h = SplitMix64(options_.seed * 0x100000001b3ULL + index);
  patient->set_nhs_number(SyntheticNhsNumber(index));
  // Each organisation assigns its own MRN: stable per (patient, publisher).
  const uint64_t mrn_hash = SplitMix64(h ^ Fnv1a(publisher));
  patient->set_local_mrn((ClassifyOrg(publisher) == OrgType::kTrust ? "K" : "P") +
                         Digits(mrn_hash % 10'000'000, 7));
  patient->set_mrn_assigning_ods(publisher);

  // Ages: a fifth children, half working age, the rest 65 and over, as in hospital activity.
  const uint64_t band = (h >> 8) % 100;
  int64_t age_days = 0;
  const uint64_t within = h >> 16;
  if (band < 20) {
    age_days = static_cast<int64_t>(within % (18 * 365));
  } else if (band < 70) {
    age_days = 18 * 365 + static_cast<int64_t>(within % (47 * 365));
  } else {
    age_days = 65 * 365 + static_cast<int64_t>(within % (35 * 365));
  }
  patient->set_birth_date(IsoDate(now_seconds_ / kSecondsPerDay - age_days));

  const uint64_t sex = (h >> 40) % 1000;
  patient->set_sex(sex < 490   ? v1::SEX_MALE
                   : sex < 990 ? v1::SEX_FEMALE
                   : sex < 995 ? v1::SEX_OTHER
                               : v1::SEX_UNKNOWN);
  const std::string_view postcode = kPostcodes[(h >> 50) % kPostcodes.size()];
  patient->set_postcode(std::string(postcode));
  const uint64_t names = SplitMix64(h);
  patient->set_given_name(std::string(kGivenNames[names % kGivenNames.size()]));
  patient->set_family_name(std::string(kFamilyNames[(names >> 8) % kFamilyNames.size()]));
  patient->set_address(std::to_string(1 + (names >> 16) % 180) + " " +
                       std::string(kStreets[(names >> 32) % kStreets.size()]) + ", " +
                       std::string(PostTown(postcode)));
  patient->set_registered_gp_ods(RegisteredPractice(index));
}

const std::string& SyntheticGenerator::RegisteredPractice(uint32_t index) const {
  const uint64_t h = SplitMix64((options_.seed ^ 0x5bd1e995ULL) * 0x100000001b3ULL + index);
  return practices_[h % practices_.size()];
}

uint32_t SyntheticGenerator::PickPatient(const std::string& publisher) {
  auto index = static_cast<uint32_t>(Uniform(rng_, options_.population));
  if (ClassifyOrg(publisher) != OrgType::kPractice) {
    return index;
  }
  // A practice records activity for its own registered patients: walk on from a random patient to
  // the next one registered there. Bounded so a tiny population without one stays cheap.
  const uint32_t steps = std::min<uint32_t>(options_.population, 4096);
  for (uint32_t step = 0; step < steps; ++step) {
    const uint32_t candidate = (index + step) % options_.population;
    if (RegisteredPractice(candidate) == publisher) {
      return candidate;
    }
  }
  return index;
}

v1::Event SyntheticGenerator::Next() {
  ++counter_;
  const size_t publisher_index = Uniform(rng_, options_.publishers.size());
  const std::string& publisher = options_.publishers[publisher_index];

  // Corrections and withdrawals of an earlier event from the same publisher.
  v1::Event& last = last_event_[publisher_index];
  if (last.has_envelope()) {
    const bool update = Chance(rng_, 0.04);
    const bool cancel = !update && Chance(rng_, 0.01);
    if (update || cancel) {
      v1::Event event = last;
      v1::Envelope* env = event.mutable_envelope();
      env->set_supersedes_event_id(env->event_id());
      env->set_event_id(options_.id_prefix + std::to_string(counter_));
      env->set_lifecycle(update ? v1::LIFECYCLE_UPDATE : v1::LIFECYCLE_CANCEL);
      const int64_t recorded =
          std::min(env->recorded_at().seconds() + 60 + static_cast<int64_t>(Uniform(rng_, 3600)),
                   now_seconds_);
      SetTimestamp(env->mutable_recorded_at(), recorded);
      if (update && event.has_activity()) {
        event.mutable_activity()->set_status("finished");
      } else if (update) {
        event.mutable_referral()->set_priority(v1::REFERRAL_PRIORITY_URGENT);
      }
      if (cancel) {
        last.Clear();
      } else {
        last = event;
      }
      return event;
    }
  }

  v1::Event event;
  v1::Envelope* env = event.mutable_envelope();
  env->set_event_id(options_.id_prefix + std::to_string(counter_));
  env->set_publisher_ods(publisher);
  const OrgType org = ClassifyOrg(publisher);
  env->set_site_ods(org == OrgType::kTrust ? publisher + "01" : publisher);
  env->set_source_system(org == OrgType::kTrust      ? "Oracle Health Millennium"
                         : org == OrgType::kPractice ? "TPP SystmOne"
                                                     : "Liquidlogic LAS");
  env->set_lifecycle(v1::LIFECYCLE_NEW);
  const int64_t occurred =
      now_seconds_ - kMinAgeSeconds - static_cast<int64_t>(Uniform(rng_, kWindowSeconds));
  SetTimestamp(env->mutable_occurred_at(), occurred);
  SetTimestamp(env->mutable_recorded_at(),
               occurred + static_cast<int64_t>(Uniform(rng_, kMinAgeSeconds)));
  // Source systems stamp recording time to the millisecond.
  env->mutable_recorded_at()->set_nanos(static_cast<int32_t>(Uniform(rng_, 1000)) * 1'000'000);
  const uint32_t patient_index = PickPatient(publisher);
  FillPatient(patient_index, publisher, env->mutable_patient());

  if (Chance(rng_, options_.referral_share)) {
    FillReferral(publisher, env->patient(), occurred, event.mutable_referral());
  } else {
    FillActivity(publisher, occurred, event.mutable_activity());
  }
  last = event;
  return event;
}

void SyntheticGenerator::FillActivity(const std::string& publisher, int64_t occurred,
                                      v1::ActivityEvent* activity) {
  const OrgType org = ClassifyOrg(publisher);
  const v1::ActivityKind kind = org == OrgType::kTrust      ? Pick(rng_, kTrustKinds)
                                : org == OrgType::kPractice ? Pick(rng_, kPracticeKinds)
                                                            : Pick(rng_, kLocalAuthorityKinds);
  activity->set_kind(kind);
  activity->set_encounter_id(publisher + "-E" + Digits(counter_, 8));
  std::string_view enc_class = "AMB";
  std::string_view status = "finished";
  int64_t start = occurred;
  int64_t end = occurred + 15 * 60;
  switch (kind) {
    case v1::ACTIVITY_KIND_AE_ATTENDANCE:
      enc_class = "EMER";
      end = occurred + 60 * static_cast<int64_t>(60 + Uniform(rng_, 300));
      activity->set_treatment_function("180");
      activity->set_location("ED");
      AddCode(activity->mutable_diagnoses(), kSnomed, PickOne(rng_, kAeComplaints));
      break;
    case v1::ACTIVITY_KIND_EMERGENCY_ADMISSION:
    case v1::ACTIVITY_KIND_ELECTIVE_ADMISSION:
    case v1::ACTIVITY_KIND_TRANSFER: {
      const bool emergency = kind != v1::ACTIVITY_KIND_ELECTIVE_ADMISSION;
      enc_class = "IMP";
      status = "in-progress";
      end = 0;
      activity->set_treatment_function(std::string(PickOne(rng_, kAdmittingSpecialties)));
      activity->set_location("Ward " + std::to_string(1 + Uniform(rng_, 40)));
      activity->set_admission_source("19");
      activity->set_admission_method(emergency ? "21" : "11");
      if (emergency) {
        AddCode(activity->mutable_diagnoses(), kIcd10, PickOne(rng_, kAdmissionDiagnoses));
      } else {
        AddCode(activity->mutable_procedures(), kOpcs4, PickOne(rng_, kElectiveProcedures));
      }
      break;
    }
    case v1::ACTIVITY_KIND_DISCHARGE:
      enc_class = "IMP";
      start = occurred - kSecondsPerDay * static_cast<int64_t>(1 + Uniform(rng_, 12));
      end = occurred;
      activity->set_treatment_function(std::string(PickOne(rng_, kAdmittingSpecialties)));
      activity->set_discharge_destination(Chance(rng_, 0.85) ? "19" : "54");
      AddCode(activity->mutable_diagnoses(), kIcd10, PickOne(rng_, kAdmissionDiagnoses));
      break;
    case v1::ACTIVITY_KIND_OUTPATIENT_ATTENDANCE:
    case v1::ACTIVITY_KIND_PRE_ADMISSION:
      end = occurred + 60 * static_cast<int64_t>(10 + Uniform(rng_, 30));
      activity->set_treatment_function(std::string(PickOne(rng_, kOutpatientSpecialties)));
      activity->set_location("OPD " + std::to_string(1 + Uniform(rng_, 12)));
      if (Chance(rng_, 0.6)) {
        AddCode(activity->mutable_diagnoses(), kIcd10, PickOne(rng_, kOutpatientDiagnoses));
      }
      if (Chance(rng_, 0.5)) {
        activity->set_referral_id(
            Digits(SplitMix64(counter_ ^ options_.seed) % 1'000'000'000'000, 12));
      }
      break;
    case v1::ACTIVITY_KIND_DID_NOT_ATTEND:
      status = "cancelled";
      end = 0;
      if (org == OrgType::kTrust) {
        activity->set_treatment_function(std::string(PickOne(rng_, kOutpatientSpecialties)));
        activity->set_location("OPD " + std::to_string(1 + Uniform(rng_, 12)));
      } else {
        activity->set_location("Surgery");
      }
      activity->set_admission_method("DNA");
      break;
    case v1::ACTIVITY_KIND_GP_CONSULTATION:
      activity->set_location(Chance(rng_, 0.7) ? "Surgery" : "Telephone");
      if (Chance(rng_, 0.6)) {
        AddCode(activity->mutable_diagnoses(), kSnomed, PickOne(rng_, kGpProblems));
      }
      break;
    case v1::ACTIVITY_KIND_COMMUNITY_CONTACT:
    case v1::ACTIVITY_KIND_SOCIAL_CARE_ASSESSMENT:
      enc_class = "HH";
      end = occurred + 60 * static_cast<int64_t>(20 + Uniform(rng_, 60));
      activity->set_location("Patient's home");
      AddCode(activity->mutable_procedures(), kSnomed,
              kind == v1::ACTIVITY_KIND_COMMUNITY_CONTACT ? PickOne(rng_, kCommunityProcedures)
                                                          : PickOne(rng_, kSocialCareProcedures));
      break;
    case v1::ACTIVITY_KIND_MENTAL_HEALTH_CONTACT:
      end = occurred + 60 * static_cast<int64_t>(30 + Uniform(rng_, 30));
      activity->set_treatment_function("710");
      activity->set_location("CMHT clinic");
      AddCode(activity->mutable_diagnoses(), kIcd10, PickOne(rng_, kMentalHealthDiagnoses));
      break;
    default:
      break;
  }
  activity->set_encounter_class(std::string(enc_class));
  activity->set_status(std::string(status));
  SetTimestamp(activity->mutable_period_start(), start);
  if (end != 0) {
    SetTimestamp(activity->mutable_period_end(), end);
  }
}

void SyntheticGenerator::FillReferral(const std::string& publisher, const v1::Patient& patient,
                                      int64_t occurred, v1::ReferralEvent* referral) {
  const bool from_practice = ClassifyOrg(publisher) != OrgType::kTrust;
  const v1::ReferralStatus status =
      from_practice ? Pick(rng_, kRequesterStatuses) : Pick(rng_, kPerformerStatuses);
  referral->set_status(status);
  referral->set_priority(Pick(rng_, kPriorities));
  referral->set_requester_ods(from_practice ? publisher : patient.registered_gp_ods());
  referral->set_performer_ods(from_practice ? std::string(trusts_[Uniform(rng_, trusts_.size())])
                                            : publisher);
  // Most referrals go through e-RS and carry its 12-digit UBRN, which then identifies them.
  const uint64_t id_hash = SplitMix64(counter_ * 0x9e3779b97f4a7c15ULL ^ options_.seed);
  if (Chance(rng_, 0.65)) {
    referral->set_ubrn(Digits(id_hash % 1'000'000'000'000, 12));
    referral->set_referral_id(referral->ubrn());
  } else {
    referral->set_referral_id(referral->requester_ods() + "-R" + Digits(id_hash % 100'000'000, 8));
  }
  referral->set_specialty(std::string(PickOne(rng_, kOutpatientSpecialties)));
  AddCode(referral->mutable_reasons(), kSnomed, PickOne(rng_, kReferralReasons));
  const bool later_status = status != v1::REFERRAL_STATUS_CREATED;
  SetTimestamp(referral->mutable_authored_at(),
               later_status ? occurred - kSecondsPerDay * static_cast<int64_t>(Uniform(rng_, 30))
                            : occurred);
  if (status == v1::REFERRAL_STATUS_BOOKED) {
    SetTimestamp(referral->mutable_appointment_at(),
                 occurred + kSecondsPerDay * static_cast<int64_t>(3 + Uniform(rng_, 60)));
  } else if (status == v1::REFERRAL_STATUS_SEEN) {
    SetTimestamp(referral->mutable_appointment_at(), occurred);
  }
}

std::string SyntheticGenerator::MakeInvalid(v1::Event* event) {
  // Oversized events are left out of the random choice: at 64 KiB+ they would distort load tests
  // and can trip frame-size limits before event validation.
  const auto kind =
      static_cast<InvalidKind>(Uniform(rng_, static_cast<uint64_t>(InvalidKind::kOversized)));
  return MakeInvalid(event, kind);
}

std::string SyntheticGenerator::MakeInvalid(v1::Event* event, InvalidKind kind) {
  v1::Envelope* env = event->mutable_envelope();
  switch (kind) {
    case InvalidKind::kBadNhsCheckDigit: {
      std::string nhs = env->patient().nhs_number();
      if (nhs.size() != 10) {
        nhs = SyntheticNhsNumber(0);
      }
      // The check digit is unique, so any other final digit fails Modulus 11.
      nhs[9] = static_cast<char>('0' + (nhs[9] - '0' + 1) % 10);
      env->mutable_patient()->set_nhs_number(nhs);
      return std::string(kReasonInvalidNhsNumber);
    }
    case InvalidKind::kMissingNhsNumber:
      // No NHS number and no local number: an unidentified patient with a local MRN is valid.
      env->mutable_patient()->clear_nhs_number();
      env->mutable_patient()->clear_local_mrn();
      return std::string(kReasonMissingField);
    case InvalidKind::kFutureOccurredAt:
      SetTimestamp(env->mutable_occurred_at(), now_seconds_ + kSecondsPerDay);
      return std::string(kReasonFutureTimestamp);
    case InvalidKind::kBadPublisherOds:
      env->set_publisher_ods("rx-k");
      return std::string(kReasonInvalidOdsCode);
    case InvalidKind::kUpdateWithoutSupersedes:
      env->set_lifecycle(v1::LIFECYCLE_UPDATE);
      env->clear_supersedes_event_id();
      return std::string(kReasonInvalidLifecycle);
    case InvalidKind::kMissingEventId:
      env->clear_event_id();
      return std::string(kReasonMissingField);
    case InvalidKind::kAncientOccurredAt:
      // 1850-06-01: before any sensible min_year, like a defaulted date in a source system.
      SetTimestamp(env->mutable_occurred_at(), -3770668800LL);
      return std::string(kReasonInvalidTimestamp);
    case InvalidKind::kMissingBody:
      event->clear_body();
      return std::string(kReasonMissingField);
    case InvalidKind::kUnsetEventType:
      if (event->has_referral()) {
        event->mutable_referral()->set_status(v1::REFERRAL_STATUS_UNSPECIFIED);
      } else {
        event->mutable_activity()->set_kind(v1::ACTIVITY_KIND_UNSPECIFIED);
      }
      return std::string(kReasonInvalidEventType);
    case InvalidKind::kBadPostcode:
      env->mutable_patient()->set_postcode("LS1 4A");
      return std::string(kReasonInvalidField);
    case InvalidKind::kOversized: {
      std::string note(ValidationLimits().max_event_bytes + 1024, 'x');
      if (event->has_referral()) {
        event->mutable_referral()->set_note(std::move(note));
      } else {
        event->mutable_activity()->set_note(std::move(note));
      }
      return std::string(kReasonEventTooLarge);
    }
  }
  return std::string(kReasonInvalidField);
}

}  // namespace carehub
