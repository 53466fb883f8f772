// A small method-aware router for the master's HTTP port.
//
// cpp-httplib dispatches by method first and answers 404 when a path exists
// only for another method; users of a JSON API expect 405 with an Allow
// header instead. The server hands every request to Router::Dispatch, which
// matches the path first, then the method.
#ifndef DET_MASTER_HTTP_HTTP_ROUTER_H_
#define DET_MASTER_HTTP_HTTP_ROUTER_H_

#include <functional>
#include <regex>
#include <string>
#include <vector>

#include "httplib.h"

namespace det::http {

class Router {
 public:
  // `args` holds the pattern's capture groups, in order.
  using Handler =
      std::function<void(const httplib::Request& req, httplib::Response& res,
                         const std::vector<std::string>& args)>;
  // Writes an error response (status, message) in the caller's format.
  using ErrorWriter =
      std::function<void(const httplib::Request& req, httplib::Response& res,
                         int status, const std::string& message)>;

  explicit Router(ErrorWriter error) : error_(std::move(error)) {}

  // `pattern` is an ECMAScript regex matched against the whole path.
  // HEAD requests are served by GET routes.
  void Add(const std::string& method, const std::string& pattern,
           Handler handler);

  // Runs the first route whose pattern and method match. A path that
  // matches only other methods gets 405 and "Allow"; no match, 404.
  void Dispatch(const httplib::Request& req, httplib::Response& res) const;

 private:
  struct Route {
    std::string method;
    std::regex pattern;
    Handler handler;
  };
  std::vector<Route> routes_;
  ErrorWriter error_;
};

}  // namespace det::http

#endif  // DET_MASTER_HTTP_HTTP_ROUTER_H_
