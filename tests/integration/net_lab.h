// Network namespaces for multi-host tests: each "host" is a namespace of
// its own with eth0 on a bridge that lives in a further namespace (the
// "switch"), so hosts talk over veth pairs with their own addresses and
// nothing is created in, or routed to, the test machine's own namespace.
// Use addresses of 10.231.0.0/16 only. Destroyed (namespaces deleted,
// which deletes their links) when the object goes away; namespaces left
// by a test that was killed are deleted by the next one (CleanLeftovers).
//
//   NetLab lab;
//   if (!lab.error().empty()) GTEST_SKIP() << lab.error();
//   lab.AddHost("m", "10.231.0.1/24");
//   lab.Enter("m");   // this thread (and what it starts) is now on "m"
//   cluster.SetWorkerPrefix(lab.Exec("w1"));
#ifndef DET_TESTS_INTEGRATION_NET_LAB_H_
#define DET_TESTS_INTEGRATION_NET_LAB_H_

#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace det::testing {

class NetLab {
 public:
  NetLab();
  ~NetLab();
  NetLab(const NetLab&) = delete;
  NetLab& operator=(const NetLab&) = delete;

  // Empty when namespaces could be made; else why not (not root, no `ip`).
  const std::string& error() const { return error_; }

  // A namespace for `host`, its eth0 on the switch with `cidr`.
  absl::Status AddHost(const std::string& host, const std::string& cidr);
  // A second link (eth1 on both) straight between two hosts.
  absl::Status AddDirectLink(const std::string& a, const std::string& cidr_a,
                             const std::string& b, const std::string& cidr_b);
  // Runs `ip` arguments in `host`'s namespace ("link set eth0 down").
  absl::Status Ip(const std::string& host, const std::string& args);
  // Moves the calling thread into `host`'s namespace.
  absl::Status Enter(const std::string& host);
  // The argv prefix that runs a command on `host`.
  std::vector<std::string> Exec(const std::string& host) const;
  std::string Namespace(const std::string& host) const {
    return prefix_ + host;
  }

  // Deletes namespaces named by this harness for processes now gone.
  static void CleanLeftovers();

 private:
  absl::Status Sh(const std::string& command);

  std::string prefix_;
  std::string error_;
  std::set<std::string> made_;
};

}  // namespace det::testing

#endif  // DET_TESTS_INTEGRATION_NET_LAB_H_
