// The master's HTTP port: the web page (a single-page app embedded in the
// binary), the JSON API (api_routes.h) and Prometheus' /metrics.
//
// When a token is set, the JSON API and /metrics require it (Bearer header
// or the "token" cookie that /login or ?token= sets); the page's files hold
// no data and are served to anyone, so the page can show its sign-in form.
// POSTs whose Origin is another site are refused, so no other web page a
// user has open can drive the master from their browser; and a server bound
// to loopback serves only requests addressed to a loopback name, so no page
// can reach it by re-pointing its own domain at 127.0.0.1 (DNS rebinding).
//
// Usage:
//   HttpServer http(master, token, &registry);
//   absl::StatusOr<int> port = http.Start("127.0.0.1:8091");
//   ...
//   http.Stop();  // also done by the destructor
//
// Requests are served on cpp-httplib's worker threads; every handler only
// calls the Master's thread-safe public methods.
#ifndef DET_MASTER_HTTP_HTTP_SERVER_H_
#define DET_MASTER_HTTP_HTTP_SERVER_H_

#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "httplib.h"
#include "master/core/master.h"
#include "master/http/cluster_metrics.h"
#include "master/http/http_auth.h"
#include "master/http/http_router.h"
#include "master/http/metrics_registry.h"

namespace det::http {

// Request bodies above this are refused with 413 (the API takes none
// larger than a sign-in form).
inline constexpr size_t kMaxBodyBytes = 64 * 1024;

class HttpServer {
 public:
  // `master` and `metrics` are not owned and must outlive the server;
  // `metrics` may be null. An empty token means no authentication.
  HttpServer(master::Master* master, std::string token,
             MetricsRegistry* metrics);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Listens on "host:port" ("[::1]:port" for IPv6; port 0 picks a free
  // one) and serves on background threads. Returns the bound port, or
  // INVALID_ARGUMENT for a malformed address, UNAVAILABLE when it cannot
  // bind, FAILED_PRECONDITION when already started.
  absl::StatusOr<int> Start(const std::string& address);

  // Stops accepting, finishes in-flight requests, joins the threads.
  // Safe to call more than once, and without Start.
  void Stop();

 private:
  void Handle(const httplib::Request& req, httplib::Response& res);
  void ServeStatic(const httplib::Request& req, httplib::Response& res,
                   const std::string& path);
  void Login(const httplib::Request& req, httplib::Response& res);
  void Metrics(httplib::Response& res);
  // False (with the response written) for a POST from another site's page.
  bool SameOrigin(const httplib::Request& req, httplib::Response& res);

  master::Master* master_;
  TokenAuth auth_;
  ClusterMetrics cluster_metrics_;
  Router router_;
  std::unique_ptr<httplib::Server> server_;

  absl::Mutex mu_;  // guards starting and stopping
  std::thread thread_ ABSL_GUARDED_BY(mu_);
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  // Bound to a loopback address: only loopback Host names are served.
  bool loopback_only_ = false;
};

// Splits "host:port" / "[v6]:port"; INVALID_ARGUMENT when malformed.
absl::Status SplitHostPort(const std::string& address, std::string* host,
                           int* port);

}  // namespace det::http

#endif  // DET_MASTER_HTTP_HTTP_SERVER_H_
