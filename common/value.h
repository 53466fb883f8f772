// A JSON-like value: the type of hyperparameter values and of free-form
// config sections (`data`). Plain C++, convertible to protobuf's Struct/Value
// at the edges and to JSON text through protobuf's JSON utilities.
#ifndef DET_COMMON_VALUE_H_
#define DET_COMMON_VALUE_H_

#include <cstdint>
#include <map>
#include <string>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace google::protobuf {
class Value;
class Struct;
}  // namespace google::protobuf

namespace det {

class Value;
using ValueList = std::vector<Value>;
// Ordered by key, so iteration order is the sorted name order grid needs.
using ValueMap = std::map<std::string, Value>;

class Value {
 public:
  Value() = default;  // null
  Value(bool b) : v_(b) {}
  Value(int v) : v_(static_cast<int64_t>(v)) {}
  Value(int64_t v) : v_(v) {}
  Value(double v) : v_(v) {}
  Value(const char* s) : v_(std::string(s)) {}
  Value(std::string s) : v_(std::move(s)) {}
  Value(ValueList l) : v_(std::move(l)) {}
  Value(ValueMap m) : v_(std::move(m)) {}

  bool is_null() const { return std::holds_alternative<std::monostate>(v_); }
  bool is_bool() const { return std::holds_alternative<bool>(v_); }
  bool is_int() const { return std::holds_alternative<int64_t>(v_); }
  bool is_double() const { return std::holds_alternative<double>(v_); }
  bool is_number() const { return is_int() || is_double(); }
  bool is_string() const { return std::holds_alternative<std::string>(v_); }
  bool is_list() const { return std::holds_alternative<ValueList>(v_); }
  bool is_map() const { return std::holds_alternative<ValueMap>(v_); }

  bool as_bool() const { return std::get<bool>(v_); }
  int64_t as_int() const { return std::get<int64_t>(v_); }
  // Numbers of either kind as double.
  double as_number() const {
    return is_int() ? static_cast<double>(as_int()) : std::get<double>(v_);
  }
  const std::string& as_string() const { return std::get<std::string>(v_); }
  const ValueList& as_list() const { return std::get<ValueList>(v_); }
  const ValueMap& as_map() const { return std::get<ValueMap>(v_); }
  ValueList& as_list() { return std::get<ValueList>(v_); }
  ValueMap& as_map() { return std::get<ValueMap>(v_); }

  // Map lookup; null Value when absent or not a map.
  const Value& operator[](const std::string& key) const;

  bool operator==(const Value& o) const { return v_ == o.v_; }
  bool operator!=(const Value& o) const { return !(*this == o); }

  // Compact JSON text. Integral doubles keep a ".0" so types round-trip.
  std::string ToJson() const;

 private:
  std::variant<std::monostate, bool, int64_t, double, std::string, ValueList,
               ValueMap>
      v_;
};

// `text` as a JSON string literal, quotes included. Control characters,
// '<' and DEL are escaped as \u00XX, so the result is also safe to embed
// in an HTML page.
std::string JsonQuote(absl::string_view text);

// JSON text -> Value. Integral numbers become ints, others doubles.
absl::StatusOr<Value> ParseJson(const std::string& text);

// Conversions to and from protobuf's well-known types. protobuf numbers are
// doubles: FromProto turns integral numbers back into ints.
void ToProto(const Value& v, google::protobuf::Value* out);
void ToProto(const ValueMap& m, google::protobuf::Struct* out);
Value FromProto(const google::protobuf::Value& v);
ValueMap FromProto(const google::protobuf::Struct& s);

}  // namespace det

#endif  // DET_COMMON_VALUE_H_
