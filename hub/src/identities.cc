#include "carehub/hub/identities.h"

#include <sodium.h>
#include <yaml-cpp/yaml.h>
#include <zmq.h>

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>

#include "carehub/core/strings.h"
#include "carehub/core/validation.h"

namespace carehub::hub {
namespace {

Status Bad(const std::string& where, const std::string& what) {
  return Status::Error("bad_identities", where + ": " + what);
}

// A CURVE public key in Z85 is 40 characters that decode to 32 bytes.
bool IsZ85Key(const std::string& key) {
  static constexpr std::string_view kZ85Alphabet =
      "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";
  if (key.size() != 40 || key.find_first_not_of(kZ85Alphabet) != std::string::npos) {
    return false;
  }
  uint8_t raw[32];
  return zmq_z85_decode(raw, key.c_str()) != nullptr;
}

Result<std::vector<std::string>> ReadStringList(const YAML::Node& node, const std::string& where) {
  if (!node || !node.IsSequence()) {
    return Bad(where, "must be a list");
  }
  std::vector<std::string> out;
  for (const auto& item : node) {
    if (!item.IsScalar()) {
      return Bad(where, "must be a list of strings");
    }
    out.push_back(item.as<std::string>());
  }
  return out;
}

constexpr std::string_view kQuoteKeys =
    "Z85 keys may start with characters YAML reads as syntax (! & * @ ` | > [ {): quote every key, "
    "as in public_keys: ['<key>']";

// public_keys, read so that a key YAML took for syntax is named as such: an unquoted key starting
// with '!' arrives as a tag with an empty value, one starting with '&' as an anchor on nothing.
Result<std::vector<std::string>> ReadKeyList(const YAML::Node& node, const std::string& where) {
  if (!node || !node.IsSequence()) {
    return Bad(where, "must be a list");
  }
  std::vector<std::string> out;
  size_t n = 0;
  for (const auto& item : node) {
    ++n;
    const std::string tag = item.Tag();
    const bool tagged = !tag.empty() && tag != "?" && tag != "!";
    if (tagged || !item.IsScalar() || item.Scalar().empty()) {
      return Bad(where, "entry " + std::to_string(n) +
                            (tagged ? " was read as the YAML tag '" + tag.substr(0, 1) + "...'"
                                    : " is not a key as written") +
                            "; " + std::string(kQuoteKeys));
    }
    out.push_back(item.Scalar());
  }
  return out;
}

// For a YAML syntax error at 0-based `line`: the identity whose block holds that line (the nearest
// "  <id>:" above it), and whether the line is in its public_keys. Empty id when none is found.
struct YamlErrorPlace {
  std::string identity;
  bool in_public_keys = false;
};
YamlErrorPlace PlaceOfLine(const std::string& text, int line) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) {
    lines.push_back(l);
  }
  YamlErrorPlace place;
  for (int i = std::min(line, static_cast<int>(lines.size()) - 1); i >= 0; --i) {
    const std::string& l = lines[static_cast<size_t>(i)];
    if (l.find("public_keys") != std::string::npos) {
      place.in_public_keys = true;
    }
    // "  rxk-pas:" — two spaces, a name, a colon, nothing else (a comment aside).
    if (l.size() > 3 && l.compare(0, 2, "  ") == 0 && l[2] != ' ' && l[2] != '#') {
      const auto colon = l.find(':');
      const auto rest =
          colon == std::string::npos ? std::string::npos : l.find_first_not_of(" \t\r", colon + 1);
      if (colon != std::string::npos && (rest == std::string::npos || l[rest] == '#')) {
        place.identity = l.substr(2, colon - 2);
        return place;
      }
    }
  }
  return place;
}

std::string JoinSorted(std::vector<std::string> items) {
  std::sort(items.begin(), items.end());
  std::string out;
  for (const auto& s : items) {
    out += (out.empty() ? "" : ",") + s;
  }
  return out;
}

std::string FingerprintList(const std::vector<std::string>& keys) {
  std::vector<std::string> prints;
  for (const auto& k : keys) {
    prints.push_back(KeyFingerprint(k));
  }
  return JoinSorted(prints);
}

}  // namespace

std::string_view IdentityKindName(IdentityKind kind) {
  switch (kind) {
    case IdentityKind::kPublisher:
      return "publisher";
    case IdentityKind::kSubscriber:
      return "subscriber";
    case IdentityKind::kOperator:
      return "operator";
    case IdentityKind::kReplica:
      return "replica";
  }
  return "unknown";
}

const Identity* IdentitySet::FindByKey(std::string_view z85_public_key) const {
  auto it = by_key_.find(z85_public_key);
  return it == by_key_.end() ? nullptr : FindById(it->second);
}

const Identity* IdentitySet::FindById(std::string_view id) const {
  auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : &it->second;
}

// Long on purpose: one block per field of the identities file (docs/security.md), each with its
// check and message, in file order; the checks share the partly built set.
Result<std::shared_ptr<const IdentitySet>> ParseIdentities(const std::string& yaml_text) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::Exception& e) {
    // An unquoted key starting with '*' (an alias of no anchor) or '@' ends here, with yaml-cpp's
    // own words only: name the identity and say what to do.
    const YamlErrorPlace place = PlaceOfLine(yaml_text, e.mark.line);
    std::string where = "identities";
    if (!place.identity.empty()) {
      where += "." + place.identity + (place.in_public_keys ? ".public_keys" : "");
    }
    std::string message = std::string("not valid YAML: ") + e.what();
    std::replace(message.begin(), message.end(), '\n', ' ');
    if (place.in_public_keys) {
      message += "; " + std::string(kQuoteKeys);
    }
    return Bad(where, message);
  }
  if (!root || !root.IsMap()) {
    return Bad("identities", "the file must be a mapping with one key, 'identities'");
  }
  for (const auto& kv : root) {
    // A non-scalar key would throw from as<std::string>() here, outside the try below, and end
    // the hub on a reload instead of refusing the file (found by fuzz_identities_yaml).
    if (!kv.first.IsScalar()) {
      return Bad("identities", "has a top-level key that is not a plain name");
    }
    if (kv.first.Scalar() != "identities") {
      return Bad("identities", "unknown top-level key '" + kv.first.Scalar() + "'");
    }
  }
  YAML::Node list = root["identities"];
  if (!list.IsMap()) {
    return Bad("identities", "must map identity ids to identities");
  }
  auto set = std::make_shared<IdentitySet>();
  static const std::set<std::string> kAllowed = {"kind", "ods", "subscriber", "public_keys"};
  try {
    for (const auto& kv : list) {
      Identity identity;
      identity.id = kv.first.as<std::string>();
      const std::string where = "identities." + identity.id;
      if (identity.id.empty() || identity.id.size() > 64 ||
          identity.id.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                        "0123456789-_.") != std::string::npos) {
        return Bad(where, "an identity id is 1-64 characters of letters, digits, '-', '_', '.'");
      }
      const YAML::Node& node = kv.second;
      if (!node.IsMap()) {
        return Bad(where, "must be a mapping");
      }
      for (const auto& field : node) {
        if (!kAllowed.count(field.first.as<std::string>())) {
          return Bad(where, "unknown key '" + field.first.as<std::string>() + "'");
        }
      }
      if (!node["kind"] || !node["kind"].IsScalar()) {
        return Bad(where, "needs kind: publisher, subscriber, operator or replica");
      }
      const auto kind = node["kind"].as<std::string>();
      if (kind == "publisher") {
        identity.kind = IdentityKind::kPublisher;
      } else if (kind == "subscriber") {
        identity.kind = IdentityKind::kSubscriber;
      } else if (kind == "operator") {
        identity.kind = IdentityKind::kOperator;
      } else if (kind == "replica") {
        identity.kind = IdentityKind::kReplica;
      } else {
        return Bad(where + ".kind",
                   "must be publisher, subscriber, operator or replica, not '" + kind + "'");
      }

      if (identity.kind == IdentityKind::kPublisher) {
        auto ods = ReadStringList(node["ods"], where + ".ods");
        if (!ods.ok()) {
          return ods.status();
        }
        if (ods.value().empty()) {
          return Bad(where + ".ods", "a publisher needs at least one ODS code");
        }
        for (const auto& code : ods.value()) {
          if (!IsValidOdsCode(code)) {
            return Bad(where + ".ods", "'" + code + "' is not a valid ODS code");
          }
        }
        identity.ods = std::move(ods).value();
      } else if (node["ods"]) {
        return Bad(where + ".ods", "only a publisher has ODS codes");
      }

      if (identity.kind == IdentityKind::kSubscriber) {
        identity.subscriber = identity.id;
        if (auto s = node["subscriber"]) {
          if (!s.IsScalar() || s.as<std::string>().empty()) {
            return Bad(where + ".subscriber", "must be a subscriber id");
          }
          identity.subscriber = s.as<std::string>();
        }
      } else if (node["subscriber"]) {
        return Bad(where + ".subscriber", "only a subscriber identity names a subscriber");
      }

      auto keys = ReadKeyList(node["public_keys"], where + ".public_keys");
      if (!keys.ok()) {
        return keys.status();
      }
      if (keys.value().empty()) {
        return Bad(where + ".public_keys", "needs at least one public key");
      }
      for (const auto& key : keys.value()) {
        if (!IsZ85Key(key)) {
          // Quoting is part of the hint: a key YAML cut at a syntax character ('!' then '[' is
          // the tag "!" and 39 characters) arrives here, not as a tag, and needs it as much.
          return Bad(where + ".public_keys",
                     "a public key is 40 characters of Z85 (as written by carehubctl keygen); " +
                         std::string(kQuoteKeys));
        }
        auto [it, inserted] = set->by_key_.emplace(key, identity.id);
        if (!inserted) {
          return Bad(where + ".public_keys", "key " + KeyFingerprint(key) +
                                                 " is already listed for identity '" + it->second +
                                                 "'");
        }
      }
      identity.public_keys = std::move(keys).value();
      std::string id = identity.id;
      if (!set->by_id_.emplace(id, std::move(identity)).second) {
        return Bad(where, "identity id listed twice");
      }
    }
  } catch (const YAML::Exception& e) {
    return Bad("identities", std::string("unexpected value: ") + e.what());
  }
  return std::shared_ptr<const IdentitySet>(std::move(set));
}

Result<std::shared_ptr<const IdentitySet>> LoadIdentities(const std::filesystem::path& file) {
  std::ifstream in(file);
  if (!in) {
    return Status::Error("bad_identities", file.string() + ": cannot be read");
  }
  std::stringstream text;
  text << in.rdbuf();
  auto result = ParseIdentities(text.str());
  if (!result.ok()) {
    return Status::Error("bad_identities", file.string() + ": " + result.status().message());
  }
  return result;
}

bool MayPublish(const IdentitySet& set, std::string_view identity, std::string_view ods) {
  const Identity* who = set.FindById(identity);
  if (!who || who->kind != IdentityKind::kPublisher) {
    return false;
  }
  return std::find(who->ods.begin(), who->ods.end(), ods) != who->ods.end();
}

bool MaySubscribe(const IdentitySet& set, std::string_view identity, std::string_view subscriber) {
  const Identity* who = set.FindById(identity);
  return who && who->kind == IdentityKind::kSubscriber && who->subscriber == subscriber;
}

std::vector<std::string> DiffIdentities(const IdentitySet& before, const IdentitySet& after) {
  std::vector<std::string> changes;
  auto describe = [](const Identity& i) {
    std::string s = std::string(IdentityKindName(i.kind));
    if (i.kind == IdentityKind::kPublisher) {
      s += " ods=" + JoinSorted(i.ods);
    } else if (i.kind == IdentityKind::kSubscriber) {
      s += " subscriber=" + i.subscriber;
    }
    return s + " keys=" + FingerprintList(i.public_keys);
  };
  for (const auto& [id, identity] : before.identities()) {
    const Identity* now = after.FindById(id);
    if (!now) {
      changes.push_back("removed identity " + id + " (" + describe(identity) + ")");
    } else if (describe(identity) != describe(*now)) {
      changes.push_back("changed identity " + id + ": " + describe(identity) + " -> " +
                        describe(*now));
    }
  }
  for (const auto& [id, identity] : after.identities()) {
    if (!before.FindById(id)) {
      changes.push_back("added identity " + id + " (" + describe(identity) + ")");
    }
  }
  return changes;
}

std::string KeyFingerprint(std::string_view z85_public_key) {
  unsigned char hash[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(hash, reinterpret_cast<const unsigned char*>(z85_public_key.data()),
                     z85_public_key.size());
  return "sha256:" + HexEncode(std::string_view(reinterpret_cast<const char*>(hash), 6));
}

}  // namespace carehub::hub
