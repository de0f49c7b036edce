// The Jinja interpreter against Python jinja2 (fixtures from
// tests/fixtures/gen_chat_template_cases.py), plus its error reporting and the pieces with
// Python semantics (number formatting, repr, Unicode case mapping).
#include "engine/tokenizer/jinja/template.h"

#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>

#include "engine/tokenizer/jinja/unicode.h"
#include "engine/tokenizer/jinja/value.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/testing/jinja_json.h"
#include "tests/testing/test_paths.h"

namespace moeserve::jinja {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;
using Json = nlohmann::ordered_json;

Json LoadFixture() {
  std::ifstream in(testing::SourcePath("tests/fixtures/chat_template_cases.json"));
  EXPECT_TRUE(in.good()) << "missing fixture; run tests/fixtures/gen_chat_template_cases.py";
  std::stringstream buffer;
  buffer << in.rdbuf();
  return Json::parse(buffer.str());
}

std::string Msg(const absl::Status& status) { return std::string(status.message()); }

absl::StatusOr<std::string> Render(const std::string& source, const Value& variables = Value()) {
  absl::StatusOr<Template> tmpl = Template::Parse(source);
  if (!tmpl.ok()) return tmpl.status();
  return tmpl->Render(variables);
}

// ---- Against jinja2 ----------------------------------------------------------------------

TEST(JinjaFixtureTest, SnippetsMatchJinja2) {
  const Json fixture = LoadFixture();
  int checked = 0;
  for (const Json& c : fixture["snippets"]) {
    const std::string name = c["name"];
    SCOPED_TRACE("snippet " + name + ": " + c["template"].get<std::string>());
    absl::StatusOr<Template> tmpl = Template::Parse(c["template"].get<std::string>());
    if (c.contains("syntax_error")) {
      ASSERT_FALSE(tmpl.ok()) << "jinja2: " << c["syntax_error"];
      EXPECT_EQ(tmpl.status().code(), absl::StatusCode::kInvalidArgument) << tmpl.status();
      EXPECT_THAT(Msg(tmpl.status()), StartsWith("line ")) << tmpl.status();
      ++checked;
      continue;
    }
    ASSERT_TRUE(tmpl.ok()) << tmpl.status();
    absl::StatusOr<std::string> out = tmpl->Render(testing::JinjaValueFromJson(c["variables"]));
    if (c.contains("render_error")) {
      ASSERT_FALSE(out.ok()) << "rendered " << *out << " but jinja2 raised " << c["render_error"];
      EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument) << out.status();
      if (c["raised"].get<bool>()) {  // raise_exception(): the message verbatim
        const std::string expected =
            c["render_error"].get<std::string>().substr(std::string("TemplateError: ").size());
        EXPECT_EQ(Msg(out.status()), expected);
      } else {
        EXPECT_THAT(Msg(out.status()), StartsWith("line ")) << out.status();
      }
    } else {
      ASSERT_TRUE(out.ok()) << out.status();
      EXPECT_EQ(*out, c["expected"].get<std::string>());
    }
    ++checked;
  }
  EXPECT_GT(checked, 100);
}

TEST(JinjaFixtureTest, ToolTemplatesMatchJinja2) {
  const Json fixture = LoadFixture();
  const Json& group = fixture["template_cases"];
  std::map<std::string, Template> templates;
  for (const auto& [name, source] : group["templates"].items()) {
    absl::StatusOr<Template> tmpl = Template::Parse(source.get<std::string>());
    ASSERT_TRUE(tmpl.ok()) << name << ": " << tmpl.status();
    templates.emplace(name, *std::move(tmpl));
  }
  int rendered = 0;
  for (const Json& c : group["cases"]) {
    const std::string name = c["template"];
    SCOPED_TRACE("template " + name + ", variables " + c["variables"].dump().substr(0, 300));
    absl::StatusOr<std::string> out =
        templates.at(name).Render(testing::JinjaValueFromJson(c["variables"]));
    if (c.contains("render_error")) {
      ASSERT_FALSE(out.ok()) << "rendered, but jinja2 raised " << c["render_error"];
      EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument) << out.status();
    } else {
      ASSERT_TRUE(out.ok()) << out.status();
      EXPECT_EQ(*out, c["expected"].get<std::string>());
      ++rendered;
    }
  }
  EXPECT_GT(rendered, 40);
}

// ---- Errors carry positions --------------------------------------------------------------

TEST(JinjaErrorTest, SyntaxErrorHasLineAndColumn) {
  absl::StatusOr<Template> tmpl = Template::Parse("line one\n  {{ 1 + }}");
  ASSERT_FALSE(tmpl.ok());
  EXPECT_EQ(tmpl.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Msg(tmpl.status()), StartsWith("line 2, column 10: "));
}

TEST(JinjaErrorTest, UnterminatedStringAndUnclosedTags) {
  EXPECT_THAT(Msg(Template::Parse("{{ 'abc }}").status()), StartsWith("line 1, column 4: "));
  EXPECT_THAT(Msg(Template::Parse("a\n{% if x %}").status()), HasSubstr("endif"));
  EXPECT_THAT(Msg(Template::Parse("{{ x").status()), StartsWith("line 1, column 1: "));
  EXPECT_THAT(Msg(Template::Parse("ab\n {# x").status()),
              StartsWith("line 2, column 2: Missing end of comment tag"));
}

struct UnsupportedCase {
  const char* source;
  const char* message;  // the whole expected message
};

TEST(JinjaErrorTest, UnsupportedConstructsFailAtParseWithPosition) {
  const UnsupportedCase cases[] = {
      {"{% include 'x.j2' %}", "line 1, column 4: unsupported tag 'include'"},
      {"x\n  {% extends 'base' %}", "line 2, column 6: unsupported tag 'extends'"},
      {"{% block b %}{% endblock %}", "line 1, column 4: unsupported tag 'block'"},
      {"{% import 'm' as m %}", "line 1, column 4: unsupported tag 'import'"},
      {"{% call m() %}{% endcall %}", "line 1, column 4: unsupported tag 'call'"},
      {"{% for x in xs recursive %}{% endfor %}",
       "line 1, column 16: unsupported recursive for loop"},
      {"{{ x | wordwrap(10) }}", "line 1, column 8: unsupported filter 'wordwrap'"},
      {"{{ x | truncate }}", "line 1, column 8: unsupported filter 'truncate'"},
      {"{{ x | groupby('a') }}", "line 1, column 8: unsupported filter 'groupby'"},
      {"{{ '{}'.format(1) }}", "line 1, column 8: unsupported method 'format()'"},
      {"{{ f(*args) }}", "line 1, column 6: unsupported *args / **kwargs in a call"},
      {"{{ cycler('a') }}", "line 1, column 4: unsupported global 'cycler'"},
      {"{% macro m() %}{{ varargs }}{% endmacro %}",
       "line 1, column 19: unsupported 'varargs' in a macro"},
      {"{{ 99999999999999999999 }}",
       "line 1, column 4: unsupported integer literal larger than 64 bits"},
      {"{{ '\\N{BULLET}' }}", "line 1, column 4: unsupported \\N{...} escape in a string literal"},
  };
  for (const UnsupportedCase& c : cases) {
    absl::StatusOr<Template> tmpl = Template::Parse(c.source);
    ASSERT_FALSE(tmpl.ok()) << c.source;
    EXPECT_EQ(tmpl.status().code(), absl::StatusCode::kUnimplemented) << c.source;
    EXPECT_EQ(Msg(tmpl.status()), c.message) << c.source;
  }
}

TEST(JinjaErrorTest, RenderErrorsNameTheExpression) {
  absl::StatusOr<std::string> out = Render("ok\n{% if true %}\n  {{ missing.attr }}{% endif %}");
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Msg(out.status()), "line 3, column 13: 'missing' is undefined");  // at `.attr`

  out = Render("{{ {'a': 1}.b.c }}");
  EXPECT_EQ(Msg(out.status()), "line 1, column 14: 'dict object' has no attribute 'b'");
}

// jinja2 quotes the type for a missing attribute but not for a missing element
// (Undefined._undefined_message), e.g. `messages[0]['role']` over no messages.
TEST(JinjaErrorTest, MissingElementMessagesMatchJinja2) {
  const Value empty = Value::List({});
  Dict vars;
  vars.Set("xs", empty);
  vars.Set("d", Value::FromDict(Dict()));
  const Value variables = Value::FromDict(std::move(vars));
  EXPECT_EQ(Msg(Render("{{ xs[0]['role'] }}", variables).status()),
            "line 1, column 9: list object has no element 0");
  EXPECT_EQ(Msg(Render("{{ xs[-1].role }}", variables).status()),
            "line 1, column 10: list object has no element -1");
  EXPECT_EQ(Msg(Render("{{ d[1].a }}", variables).status()),
            "line 1, column 8: dict object has no element 1");
  EXPECT_EQ(Msg(Render("{{ none[0].a }}", variables).status()),
            "line 1, column 11: None has no element 0");
  EXPECT_EQ(Msg(Render("{{ xs['k'].a }}", variables).status()),
            "line 1, column 11: 'list object' has no attribute 'k'");
}

TEST(JinjaErrorTest, RaiseExceptionMessageIsVerbatim) {
  absl::StatusOr<std::string> out = Render("text {{ raise_exception('Roles must alternate') }}");
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Msg(out.status()), "Roles must alternate");
}

TEST(JinjaErrorTest, RuntimeUnsupportedIsUnimplemented) {
  absl::StatusOr<std::string> out = Render("{{ range(3) }}");
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(Msg(out.status()), StartsWith("line 1, column 4: unsupported"));
}

TEST(JinjaErrorTest, RunawayRecursionIsAnErrorNotACrash) {
  absl::StatusOr<std::string> out =
      Render("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}");
  ASSERT_FALSE(out.ok());
  EXPECT_THAT(Msg(out.status()), HasSubstr("recursion"));
  std::string deep(5000, '(');
  EXPECT_FALSE(Template::Parse("{{ " + deep + " }}").ok());
}

TEST(JinjaErrorTest, LongChainsAreBoundedNotRecursedIntoOverflow) {
  std::string sum = "{{ 1";
  std::string filters = "{{ 'x'";
  std::string attrs = "{{ d";
  for (int i = 0; i < 100000; ++i) {
    sum += " + 1";
    filters += "|upper";
    attrs += ".a";
  }
  for (const std::string& source : {sum + " }}", filters + " }}", attrs + " }}"}) {
    absl::StatusOr<Template> tmpl = Template::Parse(source);
    ASSERT_FALSE(tmpl.ok());
    EXPECT_EQ(tmpl.status().code(), absl::StatusCode::kUnimplemented);
  }
  // Ordinary lengths are fine.
  std::string moderate = "{{ 0";
  for (int i = 0; i < 150; ++i) moderate += " + 1";
  EXPECT_EQ(*Render(moderate + " }}"), "150");
}

// ---- Python semantics in isolation -------------------------------------------------------

TEST(JinjaValueTest, FloatsPrintLikePythonRepr) {
  EXPECT_EQ(FormatFloat(1.0), "1.0");
  EXPECT_EQ(FormatFloat(0.1), "0.1");
  EXPECT_EQ(FormatFloat(-2.5), "-2.5");
  EXPECT_EQ(FormatFloat(1e16), "1e+16");
  EXPECT_EQ(FormatFloat(1e15), "1000000000000000.0");
  EXPECT_EQ(FormatFloat(1.5e-5), "1.5e-05");
  EXPECT_EQ(FormatFloat(0.0001), "0.0001");
  EXPECT_EQ(FormatFloat(1.0 / 3), "0.3333333333333333");
  EXPECT_EQ(FormatFloat(-0.0), "-0.0");
  EXPECT_EQ(FormatFloat(1e300 * 1e10), "inf");
}

TEST(JinjaValueTest, StringsReprLikePython) {
  EXPECT_EQ(ReprString("abc"), "'abc'");
  EXPECT_EQ(ReprString("it's"), "\"it's\"");
  EXPECT_EQ(ReprString("both ' \""), "'both \\' \"'");
  EXPECT_EQ(ReprString("a\nb\t\\"), "'a\\nb\\t\\\\'");
  EXPECT_EQ(ReprString("\x01\x7f"), "'\\x01\\x7f'");
  EXPECT_EQ(ReprString("é\u00a0\u200b"), "'é\\xa0\\u200b'");
}

TEST(JinjaValueTest, DictKeepsInsertionOrderAndPythonKeyEquality) {
  Dict dict;
  dict.Set("b", Value::Int(1));
  dict.Set("a", Value::Int(2));
  dict.Set(Value::Int(1), Value::String("int"));
  dict.Set(Value::Bool(true), Value::String("bool"));  // True == 1: same key
  dict.Set("b", Value::Int(3));
  ASSERT_EQ(dict.size(), 3u);
  EXPECT_EQ(dict.entries()[0].second.int_value(), 3);
  EXPECT_EQ(dict.Find(Value::Float(1.0))->str(), "bool");
  EXPECT_EQ(*Repr(Value::FromDict(dict)), "{'b': 3, 'a': 2, 1: 'bool'}");
}

TEST(JinjaUnicodeTest, CaseMappingFollowsPython) {
  EXPECT_EQ(unicode::Upper("straße"), "STRASSE");
  EXPECT_EQ(unicode::Lower("ΟΔΟΣ"), "οδος");  // final sigma
  EXPECT_EQ(unicode::Title("hello wORLD's"), "Hello World'S");
  EXPECT_EQ(unicode::Capitalize("ǆEMAL"), "ǅemal");
}

TEST(JinjaUnicodeTest, InvalidUtf8SurvivesRoundTrip) {
  const std::string bytes = "ok\xff\xc3(\xe2\x82";
  EXPECT_EQ(unicode::Encode(unicode::Decode(bytes)), bytes);
  const std::u32string cps = unicode::Decode(bytes);
  const int64_t n = static_cast<int64_t>(cps.size());
  for (int64_t i = -n; i < n; ++i) {  // indexing from either end agrees with decoding
    EXPECT_EQ(unicode::CodePointAt(bytes, i), unicode::Encode(cps.substr(i < 0 ? n + i : i, 1)))
        << i;
  }
  EXPECT_EQ(unicode::CodePointAt(bytes, n), std::nullopt);
  EXPECT_EQ(unicode::CodePointAt(bytes, -n - 1), std::nullopt);
  Dict vars;
  vars.Set("s", Value::String(bytes));
  EXPECT_EQ(*Render("{{ s }}|{{ s | length }}", Value::FromDict(vars)), bytes + "|7");
}

TEST(JinjaTemplateTest, TemplateIsSharedAcrossRendersAndCopies) {
  absl::StatusOr<Template> tmpl = Template::Parse(
      "{% set ns = namespace(n=0) %}"
      "{% for x in xs %}{% set ns.n = ns.n + x %}"
      "{% endfor %}{{ ns.n }}");
  ASSERT_TRUE(tmpl.ok());
  const Template copy = *tmpl;
  for (int n = 1; n <= 3; ++n) {
    std::vector<Value> xs(n, Value::Int(2));
    Dict vars;
    vars.Set("xs", Value::List(xs));
    EXPECT_EQ(*copy.Render(Value::FromDict(vars)), std::to_string(2 * n));
  }
}

TEST(JinjaTemplateTest, StrftimeNowFormatsTheCurrentTime) {
  absl::StatusOr<std::string> out = Render(
      "{{ strftime_now('%Y-%m-%d') | length }}|"
      "{{ strftime_now('%Y') | int > 2000 }}");
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(*out, "10|True");
}

TEST(JinjaTemplateTest, OptionsMatchJinja2Defaults) {
  TemplateOptions plain;
  plain.trim_blocks = false;
  plain.lstrip_blocks = false;
  plain.keep_trailing_newline = true;
  absl::StatusOr<Template> tmpl = Template::Parse("  {% if true %}\nx\n  {% endif %}\n", plain);
  ASSERT_TRUE(tmpl.ok());
  EXPECT_EQ(*tmpl->Render(Value()), "  \nx\n  \n");
  tmpl = Template::Parse("  {% if true %}\nx\n  {% endif %}\n");
  EXPECT_EQ(*tmpl->Render(Value()), "x\n");
}

// Found by tests/fuzz: a width or count in the template sized a string or list to
// gigabytes ('ab'.ljust(2^32)), or overflowed `int` while parsed ('%99999999999d').
TEST(JinjaTemplateTest, HugeWidthsAndCountsAreRefused) {
  for (const char* source :
       {"{{ 'ab'.ljust(4294967296, '.') }}", "{{ 'ab'.rjust(9223372036854775807) }}",
        "{{ 'ab'.center(100000000) }}", "{{ '%99999999999d' % 1 }}", "{{ '%.99999999999f' % 1.5 }}",
        "{{ [1, 2, 3] | batch(4294967296, 0) | list }}"}) {
    absl::StatusOr<std::string> out = Render(source);
    ASSERT_FALSE(out.ok()) << source;
    EXPECT_EQ(out.status().code(), absl::StatusCode::kUnimplemented) << source << out.status();
    EXPECT_THAT(Msg(out.status()), HasSubstr("too large")) << source;
  }
  // Sizes that fit still render.
  EXPECT_EQ(
      *Render("{{ 'ab'.ljust(5, '.') }}|{{ '%5d' % 42 }}|{{ [1, 2, 3] | batch(2, 0) | list }}"),
      "ab...|   42|[[1, 2], [3, 0]]");
}

// A template value whose destruction the test can observe.
class Probe : public Object {
 public:
  explicit Probe(bool* destroyed) : destroyed_(destroyed) {}
  ~Probe() override { *destroyed_ = true; }
  std::string_view type_name() const override { return "Probe"; }

 private:
  bool* destroyed_;
};

// Found by tests/fuzz: a macro holds the scope it is defined in (which holds the macro), and
// a namespace can hold itself; both reference cycles leaked the render's scopes, variables
// included, on every render.
TEST(JinjaTemplateTest, RenderFreesMacroAndNamespaceCycles) {
  for (const char* source :
       {"{% macro m() %}x{% endmacro %}{{ m() }}",
        "{% set ns = namespace(p=probe) %}{% set ns.self = ns %}",
        "{% set ns = namespace() %}{% macro m() %}{% endmacro %}{% set ns.m = m %}",
        "{% for i in [1] %}{% macro m() %}{{ i }}{% endmacro %}{{ m() }}{% endfor %}"}) {
    bool destroyed = false;
    {
      Dict vars;
      vars.Set("probe", Value::FromObject(std::make_shared<Probe>(&destroyed)));
      absl::StatusOr<std::string> out = Render(source, Value::FromDict(std::move(vars)));
      ASSERT_TRUE(out.ok()) << source << ": " << out.status();
    }
    EXPECT_TRUE(destroyed) << source;
  }
}

}  // namespace
}  // namespace moeserve::jinja
