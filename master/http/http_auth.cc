#include "master/http/http_auth.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace det::http {

bool TokenAuth::Matches(absl::string_view candidate) const {
  // Always walk the whole configured token, so the time taken says nothing
  // about how much of a guess was right.
  unsigned char diff = candidate.size() == token_.size() ? 0 : 1;
  for (size_t i = 0; i < token_.size(); ++i) {
    unsigned char c = i < candidate.size() ? candidate[i] : 0;
    diff |= c ^ static_cast<unsigned char>(token_[i]);
  }
  return diff == 0;
}

bool TokenAuth::Allows(const httplib::Request& req) const {
  if (!enabled()) return true;
  std::string header = req.get_header_value("Authorization");
  absl::string_view h = absl::StripAsciiWhitespace(header);
  if (absl::StartsWithIgnoreCase(h, "Bearer ")) {
    return Matches(absl::StripAsciiWhitespace(h.substr(7)));
  }
  std::string cookie = CookieValue(req, "token");
  return !cookie.empty() && Matches(cookie);
}

std::string TokenAuth::SessionCookie() const {
  return absl::StrCat("token=", PercentEncode(token_),
                      "; Path=/; HttpOnly; SameSite=Strict; Max-Age=2592000");
}

std::string TokenAuth::ClearedCookie() {
  return "token=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0";
}

std::string CookieValue(const httplib::Request& req, absl::string_view name) {
  // Several Cookie headers are legal over HTTP/2 proxies; look in each.
  size_t n = req.get_header_value_count("Cookie");
  for (size_t i = 0; i < n; ++i) {
    std::string header = req.get_header_value("Cookie", i);
    for (absl::string_view part : absl::StrSplit(header, ';')) {
      part = absl::StripAsciiWhitespace(part);
      size_t eq = part.find('=');
      if (eq == absl::string_view::npos) continue;
      if (part.substr(0, eq) == name) return PercentDecode(part.substr(eq + 1));
    }
  }
  return "";
}

std::string PercentEncode(absl::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (absl::ascii_isalnum(c) || c == '-' || c == '.' || c == '_' ||
        c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string PercentDecode(absl::string_view s) {
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      int hi = hex(s[i + 1]), lo = hex(s[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out += static_cast<char>(hi * 16 + lo);
        i += 2;
        continue;
      }
    }
    out += s[i];
  }
  return out;
}

std::string LoginPage(bool failed) {
  return absl::StrCat(
      "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
      "<meta name=\"viewport\" content=\"width=device-width, "
      "initial-scale=1\"><title>det — sign in</title>"
      "<link rel=\"stylesheet\" href=\"/style.css\"></head>"
      "<body class=\"login\"><form class=\"card login-card\" method=\"post\" "
      "action=\"/login\"><h1><span class=\"logo\">det</span> master</h1>"
      "<p>This master requires its access token (the master's "
      "<code>token</code> setting, or <code>DET_TOKEN</code>).</p>",
      failed ? "<p class=\"error\" role=\"alert\">That token is not "
               "right.</p>"
             : "",
      "<label>Token <input type=\"password\" name=\"token\" "
      "autocomplete=\"current-password\" autofocus required></label>"
      "<button class=\"btn primary\" type=\"submit\">Sign in</button>"
      "</form></body></html>\n");
}

}  // namespace det::http
