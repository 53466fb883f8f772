#include "master/http/http_server.h"

#include <sys/socket.h>

#include <chrono>
#include <exception>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "master/http/api_routes.h"
#include "master/http/http_json.h"
#include "master/http/static_assets.h"

namespace det::http {
namespace {

using httplib::Request;
using httplib::Response;
using Args = std::vector<std::string>;

// Pages may load only their own files; SVG charts set inline styles.
constexpr char kContentSecurityPolicy[] =
    "default-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; frame-ancestors 'none'; form-action 'self'";

bool IsApiPath(const std::string& path) {
  return absl::StartsWith(path, "/api/") || path == "/api" ||
         path == "/metrics";
}

void WriteError(const Request& req, Response& res, int status,
                const std::string& message) {
  res.status = status;
  if (IsApiPath(req.path) || req.path.empty()) {
    res.set_content(ErrorJson(status, message), "application/json");
  } else {
    res.set_content(absl::StrCat(status, " ", message, "\n"),
                    "text/plain; charset=utf-8");
  }
}

// The host name of a Host header ("127.0.0.1:8091", "[::1]:8091", "x").
std::string HostName(const std::string& header) {
  if (absl::StartsWith(header, "[")) {
    size_t close = header.find(']');
    return close == std::string::npos ? header : header.substr(1, close - 1);
  }
  return header.substr(0, header.find(':'));
}

bool IsLoopbackName(const std::string& host) {
  return host == "localhost" || host == "::1" || absl::StartsWith(host, "127.");
}

void Redirect(Response& res, const std::string& location) {
  res.status = 303;
  res.set_header("Location", location);
}

}  // namespace

absl::Status SplitHostPort(const std::string& address, std::string* host,
                           int* port) {
  size_t colon = address.rfind(':');
  auto bad = [&] {
    return absl::InvalidArgumentError(absl::StrCat(
        "HTTP address \"", address,
        "\" is not host:port (e.g. 127.0.0.1:8091, [::1]:8091, or port 0 "
        "for any free port)"));
  };
  if (colon == std::string::npos) return bad();
  std::string h = address.substr(0, colon);
  if (absl::StartsWith(h, "[")) {
    if (!absl::EndsWith(h, "]")) return bad();
    h = h.substr(1, h.size() - 2);
  } else if (h.find(':') != std::string::npos) {
    return bad();  // a bare IPv6 address needs brackets
  }
  int p = -1;
  if (!absl::SimpleAtoi(address.substr(colon + 1), &p) || p < 0 || p > 65535) {
    return bad();
  }
  // ":8091" means every interface, as in Go and gRPC.
  *host = h.empty() ? "0.0.0.0" : h;
  *port = p;
  return absl::OkStatus();
}

HttpServer::HttpServer(master::Master* master, std::string token,
                       MetricsRegistry* metrics)
    : master_(master),
      auth_(std::move(token)),
      cluster_metrics_(master, metrics),
      router_(WriteError),
      server_(std::make_unique<httplib::Server>()) {
  AddApiRoutes(master_, &router_);
  router_.Add(
      "GET", "/metrics",
      [this](const Request&, Response& res, const Args&) { Metrics(res); });
  router_.Add(
      "GET", "/login", [this](const Request& req, Response& res, const Args&) {
        if (!auth_.enabled()) return Redirect(res, "/");
        res.set_header("Content-Security-Policy", kContentSecurityPolicy);
        res.set_content(LoginPage(req.has_param("failed")),
                        "text/html; charset=utf-8");
      });
  router_.Add("POST", "/login",
              [this](const Request& req, Response& res, const Args&) {
                Login(req, res);
              });
  router_.Add("POST", "/logout",
              [](const Request&, Response& res, const Args&) {
                res.set_header("Set-Cookie", TokenAuth::ClearedCookie());
                Redirect(res, "/login");
              });
  // Everything else under the root is a file of the page.
  router_.Add("GET", "/([^/]*)",
              [this](const Request& req, Response& res, const Args&) {
                ServeStatic(req, res, req.path);
              });

  // One handler per method sees every request, so the router can tell an
  // unknown path (404) from a wrong method (405).
  auto handle = [this](const Request& req, Response& res) { Handle(req, res); };
  server_->Get(".*", handle);
  server_->Post(".*", handle);
  server_->Put(".*", handle);
  server_->Patch(".*", handle);
  server_->Delete(".*", handle);
  server_->Options(".*", handle);
  // cpp-httplib's default sets SO_REUSEPORT, which would let a second
  // master bind the same port and silently take half the requests.
  server_->set_socket_options([](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  server_->set_payload_max_length(kMaxBodyBytes);
  server_->set_read_timeout(10, 0);
  server_->set_write_timeout(10, 0);
  // Each open keep-alive connection holds a thread while it idles, and
  // every open page polls over several: plenty of threads, short idling.
  server_->new_task_queue = [] { return new httplib::ThreadPool(32); };
  server_->set_keep_alive_timeout(3);
  // Errors cpp-httplib answers by itself (413, 414, unparsable requests)
  // get the same JSON body as ours.
  server_->set_error_handler([](const Request& req, Response& res) {
    if (!res.body.empty()) return;
    WriteError(req, res, res.status,
               res.status == 414 ? "request line too long"
               : res.status == 413
                   ? absl::StrCat("request body over ", kMaxBodyBytes, " bytes")
                   : "bad request");
  });
  server_->set_exception_handler(
      [](const Request& req, Response& res, std::exception_ptr ep) {
        std::string what = "internal error";
        try {
          if (ep) std::rethrow_exception(ep);
        } catch (const std::exception& e) {
          what = absl::StrCat("internal error: ", e.what());
        } catch (...) {
        }
        res.body.clear();
        WriteError(req, res, 500, what);
      });
}

HttpServer::~HttpServer() { Stop(); }

absl::StatusOr<int> HttpServer::Start(const std::string& address) {
  absl::MutexLock l(&mu_);
  if (started_) {
    return absl::FailedPreconditionError("HTTP server already started");
  }
  std::string host;
  int port = 0;
  if (absl::Status st = SplitHostPort(address, &host, &port); !st.ok()) {
    return st;
  }
  int bound = port == 0 ? server_->bind_to_any_port(host)
                        : (server_->bind_to_port(host, port) ? port : -1);
  if (bound <= 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen for HTTP on ", address,
                     " (port in use, or not an address of this machine?)"));
  }
  // Written before the server thread starts, read only by its handlers.
  loopback_only_ = IsLoopbackName(host);
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  started_ = true;
  // Stop() only reaches a server that is already in its accept loop; wait
  // for it, so a Stop() right after Start() cannot be lost.
  absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (!server_->is_running() && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  return bound;
}

void HttpServer::Stop() {
  absl::MutexLock l(&mu_);
  if (!started_) return;
  server_->stop();
  if (thread_.joinable()) thread_.join();
  started_ = false;
}

void HttpServer::Handle(const Request& req, Response& res) {
  res.set_header("X-Content-Type-Options", "nosniff");
  res.set_header("Referrer-Policy", "no-referrer");
  // A master on loopback is reachable only from this machine, unless a web
  // page re-points its own domain name at 127.0.0.1 (DNS rebinding) and
  // reads the API from the user's browser. Such requests carry the page's
  // host name, so only loopback names are served here.
  std::string host = HostName(req.get_header_value("Host"));
  if (loopback_only_ && !host.empty() && !IsLoopbackName(host)) {
    return WriteError(
        req, res, 403,
        absl::StrCat("this master's HTTP port is bound to a loopback address "
                     "and answers only requests addressed to one (localhost, "
                     "127.0.0.1 or [::1]), not \"",
                     host.substr(0, 100), "\""));
  }
  if (IsApiPath(req.path)) {
    res.set_header("Cache-Control", "no-store");
    if (!auth_.Allows(req)) {
      res.set_header("WWW-Authenticate", "Bearer realm=\"det\"");
      return WriteError(
          req, res, 401,
          "this master requires its token: send \"Authorization: Bearer "
          "<token>\", or sign in at /login");
    }
  }
  if (req.method != "GET" && req.method != "HEAD" && !SameOrigin(req, res)) {
    return;
  }
  // ?token= on a page: remember it in the cookie, and drop it from the
  // address bar (and from history) at once.
  if (!IsApiPath(req.path) && req.method == "GET" && req.has_param("token") &&
      auth_.enabled()) {
    if (!auth_.Matches(req.get_param_value("token"))) {
      return Redirect(res, "/login?failed=1");
    }
    res.set_header("Set-Cookie", auth_.SessionCookie());
    return Redirect(res, req.path);
  }
  router_.Dispatch(req, res);
}

bool HttpServer::SameOrigin(const Request& req, Response& res) {
  if (!req.has_header("Origin")) return true;  // not from a browser page
  std::string origin = req.get_header_value("Origin");
  size_t scheme = origin.find("://");
  std::string origin_host =
      scheme == std::string::npos ? "" : origin.substr(scheme + 3);
  if (!origin_host.empty() && origin_host == req.get_header_value("Host")) {
    return true;
  }
  WriteError(req, res, 403,
             absl::StrCat("cross-site request refused (Origin ", origin,
                          " is not this master)"));
  return false;
}

void HttpServer::ServeStatic(const Request& req, Response& res,
                             const std::string& path) {
  const StaticAsset* asset = FindStaticAsset(path);
  if (asset == nullptr) return WriteError(req, res, 404, "no such page");
  std::string etag = ETagFor(*asset);
  res.set_header("ETag", etag);
  // Revalidate each time: the ETag makes that cheap, and a new det-master
  // build's page is picked up at once.
  res.set_header("Cache-Control", "no-cache");
  if (absl::EndsWith(asset->name, ".html")) {
    res.set_header("Content-Security-Policy", kContentSecurityPolicy);
  }
  if (req.get_header_value("If-None-Match") == etag) {
    res.status = 304;
    return;
  }
  res.set_content(std::string(asset->body()), ContentTypeFor(asset->name));
}

void HttpServer::Login(const Request& req, Response& res) {
  if (!auth_.enabled()) return Redirect(res, "/");
  if (!auth_.Matches(req.get_param_value("token"))) {
    return Redirect(res, "/login?failed=1");
  }
  res.set_header("Set-Cookie", auth_.SessionCookie());
  Redirect(res, "/");
}

void HttpServer::Metrics(Response& res) {
  auto text = cluster_metrics_.Render();
  if (!text.ok()) {
    res.status = HttpStatusFor(text.status());
    res.set_content(absl::StrCat("# error: ", text.status().message(), "\n"),
                    "text/plain; charset=utf-8");
    return;
  }
  res.set_content(*text, "text/plain; version=0.0.4; charset=utf-8");
}

}  // namespace det::http
