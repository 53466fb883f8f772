#include "master/http/http_router.h"

#include <algorithm>

#include "absl/strings/str_join.h"

namespace det::http {

void Router::Add(const std::string& method, const std::string& pattern,
                 Handler handler) {
  routes_.push_back(Route{method, std::regex(pattern), std::move(handler)});
}

void Router::Dispatch(const httplib::Request& req,
                      httplib::Response& res) const {
  const std::string method = req.method == "HEAD" ? "GET" : req.method;
  std::vector<std::string> allowed;
  for (const Route& r : routes_) {
    std::smatch m;
    if (!std::regex_match(req.path, m, r.pattern)) continue;
    if (r.method != method) {
      if (std::find(allowed.begin(), allowed.end(), r.method) ==
          allowed.end()) {
        allowed.push_back(r.method);
      }
      continue;
    }
    std::vector<std::string> args;
    for (size_t i = 1; i < m.size(); ++i) args.push_back(m[i].str());
    r.handler(req, res, args);
    return;
  }
  if (allowed.empty()) {
    error_(req, res, 404, "no such page or API endpoint: " + req.path);
    return;
  }
  if (std::find(allowed.begin(), allowed.end(), "GET") != allowed.end()) {
    allowed.push_back("HEAD");
  }
  std::string allow = absl::StrJoin(allowed, ", ");
  res.set_header("Allow", allow);
  error_(req, res, 405,
         req.method + " is not allowed on " + req.path + "; use " + allow);
}

}  // namespace det::http
