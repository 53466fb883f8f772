// det::Value: JSON text out and back, protobuf Struct conversions, quoting.
#include "common/value.h"

#include "google/protobuf/struct.pb.h"
#include "gtest/gtest.h"

namespace det {
namespace {

TEST(ValueTest, JsonRoundTripKeepsTypesAndEveryDigit) {
  Value v(ValueMap{{"lr", Value(0.000123456789)},
                   {"tenth", Value(0.1)},
                   {"whole", Value(2.0)},
                   {"n", Value(int64_t{42})},
                   {"on", Value(true)},
                   {"name", Value("adam")},
                   {"list", Value(ValueList{Value(1), Value("x")})},
                   {"none", Value()}});
  std::string json = v.ToJson();
  EXPECT_NE(json.find("0.000123456789"), std::string::npos) << json;
  EXPECT_NE(json.find("\"tenth\":0.1,"), std::string::npos) << json;
  EXPECT_NE(json.find("\"whole\":2.0"), std::string::npos) << json;
  auto back = ParseJson(json);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ((*back)["lr"].as_number(), 0.000123456789);
  EXPECT_EQ((*back)["n"].as_int(), 42);
  EXPECT_EQ((*back)["name"].as_string(), "adam");
  EXPECT_TRUE((*back)["none"].is_null());
  EXPECT_EQ((*back)["list"].as_list().size(), 2u);
}

TEST(ValueTest, ProtoStructRoundTrip) {
  ValueMap m{{"a", Value(3)},
             {"b", Value(0.25)},
             {"g", Value(ValueMap{{"c", Value("s")}})}};
  google::protobuf::Struct s;
  ToProto(m, &s);
  ValueMap back = FromProto(s);
  EXPECT_EQ(back, m);
}

TEST(ValueTest, JsonQuoteEscapesControlsQuotesAndTags) {
  EXPECT_EQ(JsonQuote("a\"b\\c\n"), "\"a\\\"b\\\\c\\n\"");
  EXPECT_EQ(JsonQuote(std::string("\x01<x>", 4)), "\"\\u0001\\u003cx>\"");
}

TEST(ValueTest, ParseJsonRejectsGarbage) {
  EXPECT_FALSE(ParseJson("{not json").ok());
}

}  // namespace
}  // namespace det
