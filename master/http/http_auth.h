// Token authentication for the master's HTTP port: the same token as the
// gRPC API. A client presents it as "Authorization: Bearer <token>"; a
// browser gets it once (login form or ?token=) and keeps it in an HttpOnly
// cookie named "token".
#ifndef DET_MASTER_HTTP_HTTP_AUTH_H_
#define DET_MASTER_HTTP_HTTP_AUTH_H_

#include <string>

#include "absl/strings/string_view.h"
#include "httplib.h"

namespace det::http {

class TokenAuth {
 public:
  // An empty token disables authentication.
  explicit TokenAuth(std::string token) : token_(std::move(token)) {}

  bool enabled() const { return !token_.empty(); }

  // True when authentication is off, or the request carries the token in
  // its Authorization header or its "token" cookie.
  bool Allows(const httplib::Request& req) const;

  // Compares in time independent of where the strings differ.
  bool Matches(absl::string_view candidate) const;

  // Set-Cookie values that store and clear the token.
  std::string SessionCookie() const;
  static std::string ClearedCookie();

 private:
  const std::string token_;
};

// The value of cookie `name` in the request's Cookie header, percent-decoded;
// empty when absent.
std::string CookieValue(const httplib::Request& req, absl::string_view name);

// Percent-encodes every byte outside [A-Za-z0-9-._~].
std::string PercentEncode(absl::string_view s);
std::string PercentDecode(absl::string_view s);

// The login page: a form that POSTs the token to /login. `failed` shows
// that the last token was wrong.
std::string LoginPage(bool failed);

}  // namespace det::http

#endif  // DET_MASTER_HTTP_HTTP_AUTH_H_
