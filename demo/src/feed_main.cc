// carehub-ics-feed: plays the demo's source systems against the running adapters.
//
//   carehub-ics-feed mllp --to HOST:PORT --file TRUST.hl7 [--connections N]
//       sends each line (one HL7 message, segments split by CR) framed as MLLP and waits for its
//       ACK; AE (the adapter could not persist) is retried, AR is counted with its reason.
//   carehub-ics-feed fhir --to http://HOST:PORT --dir DIR
//       POSTs every *.json Bundle in DIR (name order) to /fhir; 503 is retried.
//
// Prints progress on stderr and a JSON summary on stdout. Exit 0 when everything was answered,
// 1 when a connection failed, 2 on bad usage.

#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <httplib.h>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

namespace {

struct Tally {
  std::mutex mu;
  std::atomic<int64_t> answered{0};
  int64_t accepted = 0;
  int64_t rejected = 0;
  int64_t retried = 0;
  std::map<std::string, int64_t> reasons;
  bool failed = false;
};

int Connect(const std::string& host, const std::string& port) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (getaddrinfo(host.c_str(), port.c_str(), &hints, &res) != 0) {
    return -1;
  }
  int fd = -1;
  for (addrinfo* a = res; a != nullptr && fd < 0; a = a->ai_next) {
    fd = socket(a->ai_family, a->ai_socktype, a->ai_protocol);
    if (fd >= 0 && connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
      close(fd);
      fd = -1;
    }
  }
  freeaddrinfo(res);
  return fd;
}

bool SendAll(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    const ssize_t n = send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n <= 0) {
      return false;
    }
    off += static_cast<size_t>(n);
  }
  return true;
}

// Reads one MLLP frame (without its framing) into *ack.
bool ReadFrame(int fd, std::string* buffer, std::string* ack) {
  while (true) {
    const size_t end = buffer->find("\x1c\r");
    if (end != std::string::npos) {
      const size_t start = buffer->find('\x0b');
      *ack = buffer->substr(start == std::string::npos ? 0 : start + 1,
                            end - (start == std::string::npos ? 0 : start + 1));
      buffer->erase(0, end + 2);
      return true;
    }
    char chunk[4096];
    const ssize_t n = recv(fd, chunk, sizeof(chunk), 0);
    if (n <= 0) {
      return false;
    }
    buffer->append(chunk, static_cast<size_t>(n));
  }
}

// MSA-1 and, for AE/AR, the reason (MSA-3 text, or ERR-5 in v2.5+).
std::pair<std::string, std::string> AckCode(const std::string& ack) {
  std::string code;
  std::string reason;
  size_t pos = 0;
  while (pos < ack.size()) {
    size_t end = ack.find('\r', pos);
    if (end == std::string::npos) {
      end = ack.size();
    }
    const std::string seg = ack.substr(pos, end - pos);
    std::vector<std::string> fields;
    size_t f = 0;
    while (true) {
      const size_t bar = seg.find('|', f);
      fields.push_back(seg.substr(f, bar == std::string::npos ? std::string::npos : bar - f));
      if (bar == std::string::npos) {
        break;
      }
      f = bar + 1;
    }
    if (fields[0] == "MSA" && fields.size() > 1) {
      code = fields[1];
      if (fields.size() > 3 && reason.empty()) {
        reason = fields[3];
      }
    } else if (fields[0] == "ERR" && fields.size() > 5 && !fields[5].empty()) {
      reason = fields[5];
    } else if (fields[0] == "ERR" && fields.size() > 1 && reason.empty()) {
      // v2.4: seg^1^field^code&text&HL70357
      const size_t amp = fields[1].find('&');
      const size_t caret = fields[1].rfind('^', amp);
      if (amp != std::string::npos && caret != std::string::npos) {
        reason = fields[1].substr(caret + 1, amp - caret - 1);
      }
    }
    pos = end + 1;
  }
  const size_t colon = reason.find(':');
  return {code, colon == std::string::npos ? reason : reason.substr(0, colon)};
}

void MllpWorker(const std::string& host, const std::string& port,
                const std::vector<std::string>& messages, size_t first, size_t step, Tally* tally) {
  int fd = Connect(host, port);
  if (fd < 0) {
    std::lock_guard<std::mutex> lock(tally->mu);
    tally->failed = true;
    return;
  }
  std::string buffer;
  for (size_t i = first; i < messages.size(); i += step) {
    for (int attempt = 0;; ++attempt) {
      std::string ack;
      if (!SendAll(fd, "\x0b" + messages[i] + "\x1c\r") || !ReadFrame(fd, &buffer, &ack)) {
        std::lock_guard<std::mutex> lock(tally->mu);
        tally->failed = true;
        close(fd);
        return;
      }
      auto [code, reason] = AckCode(ack);
      if (code == "AE" && attempt < 20) {
        {
          std::lock_guard<std::mutex> lock(tally->mu);
          ++tally->retried;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(500));
        continue;
      }
      std::lock_guard<std::mutex> lock(tally->mu);
      if (code == "AA") {
        ++tally->accepted;
      } else {
        ++tally->rejected;
        ++tally->reasons[reason.empty() ? code : reason];
      }
      break;
    }
    ++tally->answered;
  }
  close(fd);
}

void Progress(const std::string& what, const Tally& tally, int64_t total, std::atomic<bool>* done) {
  while (!*done) {
    for (int i = 0; i < 20 && !*done; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    std::fprintf(stderr, "  %-24s %7lld / %lld\n", what.c_str(),
                 static_cast<long long>(tally.answered.load()), static_cast<long long>(total));
  }
}

nlohmann::json Summary(const Tally& tally, int64_t total, double seconds) {
  return {{"sent", total},       {"accepted", tally.accepted},
          {"rejected", tally.rejected}, {"retried", tally.retried},
          {"reasons", tally.reasons},   {"seconds", seconds}};
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"carehub-ics-feed: send the demo's HL7 and FHIR files to the adapters"};
  app.require_subcommand(1);
  std::string to;
  std::string file;
  std::string dir;
  size_t connections = 4;
  CLI::App* mllp = app.add_subcommand("mllp", "send HL7 v2 messages over MLLP");
  mllp->add_option("--to", to, "HOST:PORT of the MLLP listener")->required();
  mllp->add_option("--file", file, "messages, one per line")->required();
  mllp->add_option("--connections", connections, "parallel MLLP connections");
  CLI::App* fhir = app.add_subcommand("fhir", "POST FHIR Bundles");
  fhir->add_option("--to", to, "base URL, e.g. http://127.0.0.1:7420")->required();
  fhir->add_option("--dir", dir, "folder of *.json Bundles")->required();
  CLI11_PARSE(app, argc, argv);

  Tally tally;
  std::atomic<bool> done{false};
  const auto started = std::chrono::steady_clock::now();
  int64_t total = 0;
  if (mllp->parsed()) {
    std::ifstream in(file, std::ios::binary);
    if (!in) {
      std::fprintf(stderr, "carehub-ics-feed: cannot read %s\n", file.c_str());
      return 2;
    }
    std::vector<std::string> messages;
    std::string line;
    while (std::getline(in, line)) {
      if (!line.empty()) {
        messages.push_back(line);
      }
    }
    const size_t colon = to.rfind(':');
    if (colon == std::string::npos) {
      std::fprintf(stderr, "carehub-ics-feed: --to must be HOST:PORT\n");
      return 2;
    }
    total = static_cast<int64_t>(messages.size());
    std::thread progress(Progress, std::filesystem::path(file).filename().string(), std::cref(tally),
                         total, &done);
    std::vector<std::thread> workers;
    connections = std::max<size_t>(1, connections);
    for (size_t c = 0; c < connections; ++c) {
      workers.emplace_back(MllpWorker, to.substr(0, colon), to.substr(colon + 1), std::cref(messages),
                           c, connections, &tally);
    }
    for (std::thread& w : workers) {
      w.join();
    }
    done = true;
    progress.join();
  } else {
    std::vector<std::filesystem::path> files;
    for (const auto& entry : std::filesystem::directory_iterator(dir)) {
      if (entry.path().extension() == ".json") {
        files.push_back(entry.path());
      }
    }
    std::sort(files.begin(), files.end());
    total = static_cast<int64_t>(files.size());
    std::thread progress(Progress, "fhir bundles", std::cref(tally), total, &done);
    httplib::Client client(to);
    client.set_read_timeout(60, 0);
    for (const auto& path : files) {
      std::ifstream in(path, std::ios::binary);
      const std::string body((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      for (int attempt = 0;; ++attempt) {
        auto res = client.Post("/fhir", body, "application/fhir+json");
        if (!res) {
          if (attempt < 20) {
            std::this_thread::sleep_for(std::chrono::milliseconds(500));
            continue;
          }
          tally.failed = true;
          break;
        }
        if (res->status == 503 && attempt < 20) {
          ++tally.retried;
          std::this_thread::sleep_for(std::chrono::milliseconds(500));
          continue;
        }
        if (res->status == 200) {
          // batch-response: one entry per request entry.
          nlohmann::json answer = nlohmann::json::parse(res->body, nullptr, false);
          for (const auto& e : answer.value("entry", nlohmann::json::array())) {
            const std::string status = e.value("response", nlohmann::json::object()).value("status", "");
            if (status.rfind("201", 0) == 0) {
              ++tally.accepted;
            } else if (status.rfind("422", 0) == 0) {
              ++tally.rejected;
              std::string reason = "http_422";
              const auto& issues = e["response"]["outcome"]["issue"];
              if (issues.is_array() && !issues.empty()) {
                reason = issues[0].value("diagnostics", reason);
                reason = reason.substr(0, reason.find(':'));
              }
              ++tally.reasons[reason];
            }
          }
        } else if (res->status == 201) {
          ++tally.accepted;
        } else {
          ++tally.rejected;
          ++tally.reasons["http_" + std::to_string(res->status)];
        }
        break;
      }
      ++tally.answered;
    }
    done = true;
    progress.join();
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::printf("%s\n", Summary(tally, total, seconds).dump().c_str());
  return tally.failed ? 1 : 0;
}
