#include "tests/integration/net_lab.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace det::testing {
namespace {

constexpr char kBase[] = "detmh";  // every namespace of this harness

std::string Output(const std::string& command) {
  std::string out;
  FILE* p = popen(command.c_str(), "r");
  if (p == nullptr) return out;
  char buf[512];
  while (fgets(buf, sizeof buf, p) != nullptr) out += buf;
  pclose(p);
  return out;
}

}  // namespace

NetLab::NetLab() : prefix_(absl::StrCat(kBase, getpid(), "-")) {
  if (geteuid() != 0) {
    error_ = "network namespaces need root (ip netns add); not root here";
    return;
  }
  if (std::system("ip -V >/dev/null 2>&1") != 0) {
    error_ = "the ip command (iproute2) is not installed";
    return;
  }
  CleanLeftovers();
  absl::Status s = Sh(absl::StrCat("ip netns add ", Namespace("sw")));
  if (s.ok()) {
    made_.insert("sw");
    s = Sh(absl::StrCat("ip -n ", Namespace("sw"),
                        " link add br0 type bridge && ip -n ", Namespace("sw"),
                        " link set br0 up"));
  }
  if (!s.ok())
    error_ = absl::StrCat("cannot make network namespaces: ", s.message());
}

NetLab::~NetLab() {
  for (const std::string& host : made_) {
    std::system(
        absl::StrCat("ip netns del ", Namespace(host), " 2>/dev/null").c_str());
  }
}

void NetLab::CleanLeftovers() {
  for (absl::string_view line :
       absl::StrSplit(Output("ip netns list 2>/dev/null"), '\n')) {
    std::string name(
        absl::StripAsciiWhitespace(line.substr(0, line.find(' '))));
    if (!absl::StartsWith(name, kBase)) continue;
    std::string digits = name.substr(sizeof(kBase) - 1);
    digits = digits.substr(0, digits.find('-'));
    int pid = 0;
    if (!absl::SimpleAtoi(digits, &pid) || pid <= 0) continue;
    if (kill(pid, 0) == 0 || errno == EPERM) continue;  // still running
    std::system(absl::StrCat("ip netns del ", name, " 2>/dev/null").c_str());
  }
}

absl::Status NetLab::Sh(const std::string& command) {
  std::string out =
      Output(absl::StrCat("(", command, ") 2>&1; echo \"rc=$?\""));
  size_t at = out.rfind("rc=");
  if (at != std::string::npos && out.substr(at) == "rc=0\n") {
    return absl::OkStatus();
  }
  return absl::InternalError(absl::StrCat("'", command, "' failed: ", out));
}

absl::Status NetLab::AddHost(const std::string& host, const std::string& cidr) {
  if (!error_.empty()) return absl::FailedPreconditionError(error_);
  std::string ns = Namespace(host), sw = Namespace("sw");
  std::string port = "v-" + host;  // the switch's end, in the switch
  if (absl::Status s = Sh(absl::StrCat("ip netns add ", ns)); !s.ok()) return s;
  made_.insert(host);
  return Sh(absl::StrCat(
      "ip -n ", ns, " link set lo up && ip -n ", sw, " link add ", port,
      " type veth peer name eth0 netns ", ns, " && ip -n ", sw, " link set ",
      port, " master br0 && ip -n ", sw, " link set ", port, " up && ip -n ",
      ns, " addr add ", cidr, " dev eth0 && ip -n ", ns, " link set eth0 up"));
}

absl::Status NetLab::AddDirectLink(const std::string& a,
                                   const std::string& cidr_a,
                                   const std::string& b,
                                   const std::string& cidr_b) {
  std::string na = Namespace(a), nb = Namespace(b);
  return Sh(absl::StrCat(
      "ip -n ", na, " link add eth1 type veth peer name ", "eth1 netns ", nb,
      " && ip -n ", na, " addr add ", cidr_a, " dev eth1 && ip -n ", nb,
      " addr add ", cidr_b, " dev eth1 && ip -n ", na,
      " link set eth1 up && ip -n ", nb, " link set eth1 up"));
}

absl::Status NetLab::Ip(const std::string& host, const std::string& args) {
  return Sh(absl::StrCat("ip -n ", Namespace(host), " ", args));
}

absl::Status NetLab::Enter(const std::string& host) {
  std::string path = absl::StrCat("/var/run/netns/", Namespace(host));
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return absl::InternalError(absl::StrCat("open ", path));
  int rc = setns(fd, CLONE_NEWNET);
  close(fd);
  if (rc != 0) return absl::InternalError(absl::StrCat("setns ", path));
  return absl::OkStatus();
}

std::vector<std::string> NetLab::Exec(const std::string& host) const {
  // Children are started with execv: the full path.
  std::string ip = "/usr/sbin/ip";
  for (const char* p : {"/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"}) {
    if (access(p, X_OK) == 0) {
      ip = p;
      break;
    }
  }
  return {ip, "netns", "exec", Namespace(host)};
}

}  // namespace det::testing
