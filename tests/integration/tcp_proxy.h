// A TCP proxy on loopback for network-fault tests: forwards every
// connection to an upstream address, and can drop all open connections and
// refuse new ones for a while, as a broken network would.
#ifndef DET_TESTS_INTEGRATION_TCP_PROXY_H_
#define DET_TESTS_INTEGRATION_TCP_PROXY_H_

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace det::testing {

class TcpProxy {
 public:
  // `upstream` is "127.0.0.1:PORT".
  explicit TcpProxy(const std::string& upstream);
  ~TcpProxy();

  // "127.0.0.1:PORT" to connect to instead of upstream.
  std::string address() const;
  // Closes every open connection (both sides see a reset).
  void CutAll();
  // Connections accepted in the next `d` are closed at once.
  void Refuse(absl::Duration d);
  // Connections forwarded so far.
  int connections() const { return connections_.load(); }

 private:
  void AcceptLoop();
  void Pump(int client, int server);

  int upstream_port_ = 0;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> connections_{0};
  std::thread acceptor_;
  absl::Mutex mu_;
  std::vector<int> open_fds_ ABSL_GUARDED_BY(mu_);
  std::vector<std::thread> pumps_ ABSL_GUARDED_BY(mu_);
  absl::Time refuse_until_ ABSL_GUARDED_BY(mu_);
};

}  // namespace det::testing

#endif  // DET_TESTS_INTEGRATION_TCP_PROXY_H_
