// JsonWriter: what it writes parses back (json_lite) to the same values, and numbers and
// escapes are written as Python's json reads them.
#include "tools/convert/json_writer.h"

#include <string>

#include "engine/loaders/json_lite.h"
#include "gtest/gtest.h"

namespace moeserve::convert {
namespace {

TEST(JsonWriterTest, CompactDocumentParsesBack) {
  JsonWriter json;
  json.BeginObject();
  json.Key("s").String("a\"b\\c\n\t\x01 é 🙂");
  json.Key("i").Int(-12345678901234);
  json.Key("f").Float(1e-5f);
  json.Key("d").Double(0.1);
  json.Key("t").Bool(true).Key("n").Null();
  json.Key("a").BeginArray().Int(1).BeginArray().EndArray().BeginObject().EndObject().EndArray();
  json.Key("r").Raw("[1,2]");
  json.EndObject();
  const std::string& text = json.str();
  EXPECT_EQ(text.find("\": "), std::string::npos);  // compact: no added spaces
  EXPECT_EQ(text.find(", "), std::string::npos);
  auto parsed = json_lite::Parse(text);
  ASSERT_TRUE(parsed.ok()) << parsed.status() << "\n" << text;
  EXPECT_EQ(parsed->Find("s")->as_string(), "a\"b\\c\n\t\x01 é 🙂");
  EXPECT_EQ(parsed->Find("i")->as_int(), -12345678901234);
  EXPECT_EQ(static_cast<float>(parsed->Find("f")->as_double()), 1e-5f);
  EXPECT_EQ(parsed->Find("d")->as_double(), 0.1);
  EXPECT_TRUE(parsed->Find("n")->is_null());
  EXPECT_EQ(parsed->Find("a")->as_array().size(), 3u);
  EXPECT_EQ(parsed->Find("r")->as_array().size(), 2u);
}

TEST(JsonWriterTest, FloatsAreShortestWithAFraction) {
  EXPECT_EQ(JsonWriter().Float(1e-5f).str(), "1e-05");
  EXPECT_EQ(JsonWriter().Float(100000.0f).str(), "100000.0");
  EXPECT_EQ(JsonWriter().Float(0.02f).str(), "0.02");
  EXPECT_EQ(JsonWriter().Float(9.999999747378752e-06f).str(), "1e-05");
  EXPECT_EQ(JsonWriter().Double(2.0).str(), "2.0");
  EXPECT_EQ(JsonWriter().Float(-3.5f).str(), "-3.5");
  EXPECT_EQ(JsonWriter().Float(-0.00012f).str(), "-0.00012");
  EXPECT_EQ(JsonWriter().Float(1.5e-7f).str(), "1.5e-07");
  EXPECT_EQ(JsonWriter().Double(1e16).str(), "1e+16");
  EXPECT_EQ(JsonWriter().Double(123456789012345.6).str(), "123456789012345.6");
  EXPECT_EQ(JsonWriter().Float(0.0f).str(), "0.0");
}

TEST(JsonWriterTest, IndentedLayout) {
  JsonWriter json(2);
  json.BeginObject().Key("a").Int(1).Key("b").BeginArray().Int(2).EndArray().EndObject();
  EXPECT_EQ(json.str(), "{\n  \"a\": 1,\n  \"b\": [\n    2\n  ]\n}");
}

TEST(JsonWriterTest, QuoteEscapesControlCharacters) {
  EXPECT_EQ(JsonQuote(std::string("a\0b\x1f", 4)), "\"a\\u0000b\\u001f\"");
  EXPECT_EQ(JsonQuote("\r\b\f/"), "\"\\r\\b\\f/\"");
}

}  // namespace
}  // namespace moeserve::convert
