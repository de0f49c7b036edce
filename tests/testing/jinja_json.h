// JSON fixtures as Jinja values, for tests that render templates over conversations read
// from JSON (key order kept, as jinja2 keeps Python's dict order). Header only.
#ifndef MOESERVE_TESTS_TESTING_JINJA_JSON_H_
#define MOESERVE_TESTS_TESTING_JINJA_JSON_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "engine/tokenizer/jinja/value.h"
#include "nlohmann/json.hpp"

namespace moeserve::testing {

inline jinja::Value JinjaValueFromJson(const nlohmann::ordered_json& j) {
  using Json = nlohmann::ordered_json;
  switch (j.type()) {
    case Json::value_t::boolean:
      return jinja::Value::Bool(j.get<bool>());
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned:
      return jinja::Value::Int(j.get<int64_t>());
    case Json::value_t::number_float:
      return jinja::Value::Float(j.get<double>());
    case Json::value_t::string:
      return jinja::Value::String(j.get<std::string>());
    case Json::value_t::array: {
      std::vector<jinja::Value> items;
      for (const Json& item : j) items.push_back(JinjaValueFromJson(item));
      return jinja::Value::List(std::move(items));
    }
    case Json::value_t::object: {
      jinja::Dict dict;
      for (const auto& [key, value] : j.items()) dict.Set(key, JinjaValueFromJson(value));
      return jinja::Value::FromDict(std::move(dict));
    }
    default:  // null (and nlohmann's binary/discarded, which parsed JSON never holds)
      return jinja::Value::None();
  }
}

}  // namespace moeserve::testing

#endif  // MOESERVE_TESTS_TESTING_JINJA_JSON_H_
