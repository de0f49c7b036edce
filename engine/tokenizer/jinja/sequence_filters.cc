#include "engine/tokenizer/jinja/sequence_filters.h"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/status.h"
#include "common/absl_strings.h"
#include "engine/tokenizer/jinja/errors.h"
#include "engine/tokenizer/jinja/interpreter.h"
#include "engine/tokenizer/jinja/operators.h"
#include "engine/tokenizer/jinja/unicode.h"

namespace moeserve::jinja {
namespace {

using Args = std::vector<std::optional<Value>>;

Value Iterator(std::vector<Value> items) {
  return Value::Seq(std::move(items), SeqKind::kIterator);
}

// jinja2's make_attrgetter: "a.b.0" looks up item['a']['b'][0] (environment.getitem).
class AttrGetter {
 public:
  static absl::StatusOr<AttrGetter> Make(const std::optional<Value>& attribute,
                                         bool ignore_case = false,
                                         std::optional<Value> dflt = std::nullopt) {
    AttrGetter getter;
    getter.ignore_case_ = ignore_case;
    getter.default_ = std::move(dflt);
    if (!attribute.has_value() || attribute->is_none()) return getter;
    if (!attribute->is_string()) {
      getter.parts_.push_back(*attribute);
      return getter;
    }
    for (absl::string_view part : absl::StrSplit(attribute->str(), '.')) {
      const bool digits =
          !part.empty() && std::all_of(part.begin(), part.end(), absl::ascii_isdigit);
      int64_t index = 0;
      if (digits && part.size() < 18) {
        for (char c : part) index = index * 10 + (c - '0');
        getter.parts_.push_back(Value::Int(index));
      } else if (digits) {
        return RenderUnsupported("attribute index beyond 64 bits");
      } else {
        getter.parts_.push_back(Value::String(std::string(part)));
      }
    }
    return getter;
  }

  absl::StatusOr<Value> operator()(Value item) const {
    for (const Value& part : parts_) {
      MOESERVE_ASSIGN_OR_RETURN(item, GetItem(item, part));
      if (default_.has_value() && item.is_undefined()) item = *default_;
    }
    if (ignore_case_ && item.is_string()) return Value::String(unicode::Lower(item.str()));
    return item;
  }

 private:
  std::vector<Value> parts_;
  bool ignore_case_ = false;
  std::optional<Value> default_;
};

absl::StatusOr<bool> OptionalBool(const std::optional<Value>& v) {
  return v.has_value() && Truthy(*v);
}

absl::StatusOr<Value> First(Interpreter&, const Value& v, const CallArgs& args) {
  MOESERVE_RETURN_IF_ERROR(BindArgs("first", args, {}).status());
  if (v.is_sequence() && v.seq().kind == SeqKind::kIterator) {
    const Sequence& seq = v.seq();
    if (seq.cursor < seq.items.size()) return seq.items[seq.cursor++];
  } else {
    MOESERVE_ASSIGN_OR_RETURN(std::vector<Value> items, Iterate(v));
    if (!items.empty()) return items.front();
  }
  return Value::Undefined("No first item, sequence was empty.");
}

absl::StatusOr<Value> Last(Interpreter&, const Value& v, const CallArgs& args) {
  MOESERVE_RETURN_IF_ERROR(BindArgs("last", args, {}).status());
  if ((v.is_sequence() && v.seq().kind == SeqKind::kIterator) ||
      !(v.is_undefined() || v.is_string() || v.is_sequence() || v.is_dict())) {
    return RenderError(Cat("'", TypeName(v), "' object is not reversible"));
  }
  MOESERVE_ASSIGN_OR_RETURN(std::vector<Value> items, Iterate(v));
  if (items.empty()) return Value::Undefined("No last item, sequence was empty.");
  return items.back();
}

absl::StatusOr<Value> ListFilter(Interpreter&, const Value& v, const CallArgs& args) {
  MOESERVE_RETURN_IF_ERROR(BindArgs("list", args, {}).status());
  MOESERVE_ASSIGN_OR_RETURN(std::vector<Value> items, Iterate(v));
  return Value::List(std::move(items));
}

absl::StatusOr<Value> ItemsFilter(Interpreter&, const Value& v, const CallArgs& args) {
  MOESERVE_RETURN_IF_ERROR(BindArgs("items", args, {}).status());
  if (v.is_undefined()) return Iterator({});
  if (!v.is_dict()) return RenderError("Can only get item pairs from a mapping.");
  std::vector<Value> items;
  for (const auto& [key, value] : v.dict().entries()) items.push_back(Value::Tuple({key, value}));
  return Iterator(std::move(items));
}

absl::StatusOr<Value> Join(Interpreter&, const Value& v, const CallArgs& call) {
  MOESERVE_ASSIGN_OR_RETURN(Args args, BindArgs("join", call, {"d", "attribute"}));
  std::string sep;
  if (args[0].has_value()) {
    MOESERVE_ASSIGN_OR_RETURN(sep, ToStr(*args[0]));
  }
  MOESERVE_ASSIGN_OR_RETURN(std::vector<Value> items, Iterate(v));
  const bool by_attribute = args[1].has_value() && !args[1]->is_none();
  MOESERVE_ASSIGN_OR_RETURN(AttrGetter getter, AttrGetter::Make(args[1]));
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += sep;
    Value item = items[i];
    if (by_attribute) {
      MOESERVE_ASSIGN_OR_RETURN(item, getter(std::move(item)));
    }
    MOESERVE_RETURN_IF_ERROR(AppendStr(item, &out));
  }
  return Value::String(std::move(out));
}

absl::StatusOr<Value> Map(Interpreter& interpreter, const Value& v, const CallArgs& call) {
  if (!Truthy(v)) return Iterator({});
  MOESERVE_ASSIGN_OR_RETURN(std::vector<Value> items, Iterate(v));
  std::vector<Value> out;
  out.reserve(items.size());
  if (call.positional.empty()) {
    std::optional<Value> attribute;
    std::optional<Value> dflt;
    for (const auto& [name, value] : call.keyword) {
      if (name == "attribute") {
        attribute = value;
      } else if (name == "default") {
        dflt = value;
      } else {
        return RenderError(Cat("Unexpected keyword argument '", name, "'"));
      }
    }
    if (!attribute.has_value()) return RenderError("map requires a filter argument");
    if (dflt.has_value() && dflt->is_none()) dflt.reset();
    MOESERVE_ASSIGN_OR_RETURN(AttrGetter getter, AttrGetter::Make(attribute, false, dflt));
    for (Value& item : items) {
      MOESERVE_ASSIGN_OR_RETURN(Value mapped, getter(std::move(item)));
      out.push_back(std::move(mapped));
    }
    return Iterator(std::move(out));
  }
  if (!call.positional[0].is_string()) return RenderError("map filter name must be a string");
  const std::string& name = call.positional[0].str();
  const FilterFn filter = FindFilter(name);
  if (filter == nullptr) return RenderError(Cat("No filter named '", name, "'."));
  CallArgs rest;
  rest.positional.assign(call.positional.begin() + 1, call.positional.end());
  rest.keyword = call.keyword;
  for (const Value& item : items) {
    MOESERVE_ASSIGN_OR_RETURN(Value mapped, filter(interpreter, item, rest));
    out.push_back(std::move(mapped));
  }
  return Iterator(std::move(out));
}

// select / reject / selectattr / rejectattr.
absl::StatusOr<Value> SelectOrReject(Interpreter& interpreter, const Value& v, const CallArgs& call,
                                     bool keep_matches, bool by_attribute) {
  if (!Truthy(v)) return Iterator({});
  size_t next = 0;
  std::optional<AttrGetter> getter;
  if (by_attribute) {
    if (call.positional.empty()) return RenderError("Missing parameter for attribute name");
    MOESERVE_ASSIGN_OR_RETURN(getter, AttrGetter::Make(call.positional[0]));
    next = 1;
  }
  TestFn test = nullptr;
  CallArgs test_args;
  if (call.positional.size() > next) {
    if (!call.positional[next].is_string()) return RenderError("test name must be a string");
    const std::string& name = call.positional[next].str();
    test = FindTest(name);
    if (test == nullptr) return RenderError(Cat("No test named '", name, "'."));
    test_args.positional.assign(call.positional.begin() + static_cast<std::ptrdiff_t>(next + 1),
                                call.positional.end());
    test_args.keyword = call.keyword;
  }
  MOESERVE_ASSIGN_OR_RETURN(std::vector<Value> items, Iterate(v));
  std::vector<Value> out;
  for (Value& item : items) {
    Value probe = item;
    if (getter.has_value()) {
      MOESERVE_ASSIGN_OR_RETURN(probe, (*getter)(std::move(probe)));
    }
    bool match;
    if (test != nullptr) {
      MOESERVE_ASSIGN_OR_RETURN(match, test(interpreter, probe, test_args));
    } else {
      match = Truthy(probe);
    }
    if (match == keep_matches) out.push_back(std::move(item));
  }
  return Iterator(std::move(out));
}

absl::StatusOr<Value> Select(Interpreter& i, const Value& v, const CallArgs& a) {
  return SelectOrReject(i, v, a, true, false);
}
absl::StatusOr<Value> Reject(Interpreter& i, const Value& v, const CallArgs& a) {
  return SelectOrReject(i, v, a, false, false);
}
absl::StatusOr<Value> SelectAttr(Interpreter& i, const Value& v, const CallArgs& a) {
  return SelectOrReject(i, v, a, true, true);
}
absl::StatusOr<Value> RejectAttr(Interpreter& i, const Value& v, const CallArgs& a) {
  return SelectOrReject(i, v, a, false, true);
}

// Python's sorted(items, key=keys[i], reverse=reverse): stable either way.
absl::Status SortByKeys(std::vector<Value>* items, const std::vector<Value>& keys, bool reverse) {
  std::vector<size_t> order(items->size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  absl::Status error;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    if (!error.ok()) return false;
    absl::StatusOr<int> cmp = reverse ? Order(keys[b], keys[a]) : Order(keys[a], keys[b]);
    if (!cmp.ok()) {
      error = cmp.status();
      return false;
    }
    return *cmp < 0;
  });
  if (!error.ok()) return error;
  std::vector<Value> sorted;
  sorted.reserve(order.size());
  for (size_t i : order) sorted.push_back((*items)[i]);
  *items = std::move(sorted);
  return absl::OkStatus();
}

absl::StatusOr<Value> Sort(Interpreter&, const Value& v, const CallArgs& call) {
  MOESERVE_ASSIGN_OR_RETURN(Args args,
                            BindArgs("sort", call, {"reverse", "case_sensitive", "attribute"}));
  MOESERVE_ASSIGN_OR_RETURN(bool reverse, OptionalBool(args[0]));
  MOESERVE_ASSIGN_OR_RETURN(bool case_sensitive, OptionalBool(args[1]));
  // make_multi_attrgetter: "a,b" sorts by a, then b.
  std::vector<AttrGetter> getters;
  if (args[2].has_value() && args[2]->is_string()) {
    for (absl::string_view part : absl::StrSplit(args[2]->str(), ',')) {
      MOESERVE_ASSIGN_OR_RETURN(
          AttrGetter g, AttrGetter::Make(Value::String(std::string(part)), !case_sensitive));
      getters.push_back(std::move(g));
    }
  } else {
    MOESERVE_ASSIGN_OR_RETURN(AttrGetter g, AttrGetter::Make(args[2], !case_sensitive));
    getters.push_back(std::move(g));
  }
  MOESERVE_ASSIGN_OR_RETURN(std::vector<Value> items, Iterate(v));
  std::vector<Value> keys;
  for (const Value& item : items) {
    std::vector<Value> key;
    for (const AttrGetter& g : getters) {
      MOESERVE_ASSIGN_OR_RETURN(Value k, g(item));
      key.push_back(std::move(k));
    }
    keys.push_back(Value::List(std::move(key)));
  }
  MOESERVE_RETURN_IF_ERROR(SortByKeys(&items, keys, reverse));
  return Value::List(std::move(items));
}

absl::StatusOr<Value> DictSort(Interpreter&, const Value& v, const CallArgs& call) {
  MOESERVE_ASSIGN_OR_RETURN(Args args,
                            BindArgs("dictsort", call, {"case_sensitive", "by", "reverse"}));
  MOESERVE_ASSIGN_OR_RETURN(bool case_sensitive, OptionalBool(args[0]));
  MOESERVE_ASSIGN_OR_RETURN(bool reverse, OptionalBool(args[2]));
  std::string by = "key";
  if (args[1].has_value()) {
    MOESERVE_ASSIGN_OR_RETURN(by, ToStr(*args[1]));
  }
  if (by != "key" && by != "value") {
    return RenderError("You can only sort by either \"key\" or \"value\"");
  }
  if (!v.is_dict()) return RenderError(Cat("'", TypeName(v), "' object has no attribute 'items'"));
  std::vector<Value> items;
  std::vector<Value> keys;
  for (const auto& [key, value] : v.dict().entries()) {
    items.push_back(Value::Tuple({key, value}));
    Value k = by == "key" ? key : value;
    if (!case_sensitive && k.is_string()) k = Value::String(unicode::Lower(k.str()));
    keys.push_back(std::move(k));
  }
  MOESERVE_RETURN_IF_ERROR(SortByKeys(&items, keys, reverse));
  return Value::List(std::move(items));
}

absl::StatusOr<Value> Unique(Interpreter&, const Value& v, const CallArgs& call) {
  MOESERVE_ASSIGN_OR_RETURN(Args args, BindArgs("unique", call, {"case_sensitive", "attribute"}));
  MOESERVE_ASSIGN_OR_RETURN(bool case_sensitive, OptionalBool(args[0]));
  MOESERVE_ASSIGN_OR_RETURN(AttrGetter getter, AttrGetter::Make(args[1], !case_sensitive));
  MOESERVE_ASSIGN_OR_RETURN(std::vector<Value> items, Iterate(v));
  std::vector<Value> seen;
  std::vector<Value> out;
  for (Value& item : items) {
    MOESERVE_ASSIGN_OR_RETURN(Value key, getter(item));
    if (!IsHashable(key)) return RenderError(Cat("unhashable type: '", TypeName(key), "'"));
    if (std::any_of(seen.begin(), seen.end(), [&](const Value& s) { return Equals(s, key); })) {
      continue;
    }
    seen.push_back(std::move(key));
    out.push_back(std::move(item));
  }
  return Iterator(std::move(out));
}

absl::StatusOr<Value> MinMax(const Value& v, const CallArgs& call, bool max) {
  MOESERVE_ASSIGN_OR_RETURN(Args args,
                            BindArgs(max ? "max" : "min", call, {"case_sensitive", "attribute"}));
  MOESERVE_ASSIGN_OR_RETURN(bool case_sensitive, OptionalBool(args[0]));
  MOESERVE_ASSIGN_OR_RETURN(AttrGetter getter, AttrGetter::Make(args[1], !case_sensitive));
  MOESERVE_ASSIGN_OR_RETURN(std::vector<Value> items, Iterate(v));
  if (items.empty()) return Value::Undefined("No aggregated item, sequence was empty.");
  size_t best = 0;
  MOESERVE_ASSIGN_OR_RETURN(Value best_key, getter(items[0]));
  for (size_t i = 1; i < items.size(); ++i) {
    MOESERVE_ASSIGN_OR_RETURN(Value key, getter(items[i]));
    MOESERVE_ASSIGN_OR_RETURN(int cmp, Order(key, best_key));
    if (max ? cmp > 0 : cmp < 0) {
      best = i;
      best_key = std::move(key);
    }
  }
  return items[best];
}

absl::StatusOr<Value> Max(Interpreter&, const Value& v, const CallArgs& a) {
  return MinMax(v, a, true);
}
absl::StatusOr<Value> Min(Interpreter&, const Value& v, const CallArgs& a) {
  return MinMax(v, a, false);
}

absl::StatusOr<Value> Sum(Interpreter&, const Value& v, const CallArgs& call) {
  MOESERVE_ASSIGN_OR_RETURN(Args args, BindArgs("sum", call, {"attribute", "start"}));
  MOESERVE_ASSIGN_OR_RETURN(AttrGetter getter, AttrGetter::Make(args[0]));
  Value total = args[1].has_value() ? *args[1] : Value::Int(0);
  if (total.is_string()) return RenderError("sum() can't sum strings [use ''.join(seq) instead]");
  MOESERVE_ASSIGN_OR_RETURN(std::vector<Value> items, Iterate(v));
  for (Value& item : items) {
    MOESERVE_ASSIGN_OR_RETURN(Value x, getter(std::move(item)));
    MOESERVE_ASSIGN_OR_RETURN(total, BinaryOperation(ast::BinaryOp::kAdd, total, x));
  }
  return total;
}

absl::StatusOr<Value> Reverse(Interpreter&, const Value& v, const CallArgs& args) {
  MOESERVE_RETURN_IF_ERROR(BindArgs("reverse", args, {}).status());
  if (v.is_string()) {
    std::u32string cps = unicode::Decode(v.str());
    std::reverse(cps.begin(), cps.end());
    return v.is_markup() ? Value::Markup(unicode::Encode(cps))
                         : Value::String(unicode::Encode(cps));
  }
  if (!(v.is_undefined() || v.is_sequence() || v.is_dict())) {
    return RenderError("argument must be iterable");
  }
  const bool generator = v.is_sequence() && v.seq().kind == SeqKind::kIterator;
  MOESERVE_ASSIGN_OR_RETURN(std::vector<Value> items, Iterate(v));
  std::reverse(items.begin(), items.end());
  // reversed() gives an iterator; a generator cannot be reversed, so jinja2 lists it.
  return generator ? Value::List(std::move(items)) : Iterator(std::move(items));
}

absl::StatusOr<Value> Batch(Interpreter&, const Value& v, const CallArgs& call) {
  MOESERVE_ASSIGN_OR_RETURN(Args args, BindArgs("batch", call, {"linecount", "fill_with"}));
  if (!args[0].has_value() || !args[0]->is_integral() || args[0]->int_value() <= 0) {
    return RenderError("batch() linecount must be a positive integer");
  }
  const size_t linecount = static_cast<size_t>(args[0]->int_value());
  MOESERVE_ASSIGN_OR_RETURN(std::vector<Value> items, Iterate(v));
  // fill_with pads the last batch to `linecount` items: bounded as operators.cc bounds
  // [x] * n.
  if (args[1].has_value() && !args[1]->is_none() && linecount > (size_t{1} << 26)) {
    return RenderUnsupported("batch() linecount too large");
  }
  std::vector<Value> out;
  std::vector<Value> tmp;
  for (Value& item : items) {
    if (tmp.size() == linecount) out.push_back(Value::List(std::exchange(tmp, {})));
    tmp.push_back(std::move(item));
  }
  if (!tmp.empty()) {
    if (args[1].has_value() && !args[1]->is_none()) tmp.resize(linecount, *args[1]);
    out.push_back(Value::List(std::move(tmp)));
  }
  return Iterator(std::move(out));
}

}  // namespace

FilterFn FindSequenceFilter(std::string_view name) {
  static const auto* const kTable = new absl::flat_hash_map<std::string_view, FilterFn>{
      {"batch", &Batch},       {"dictsort", &DictSort}, {"first", &First},
      {"items", &ItemsFilter}, {"join", &Join},         {"last", &Last},
      {"list", &ListFilter},   {"map", &Map},           {"max", &Max},
      {"min", &Min},           {"reject", &Reject},     {"rejectattr", &RejectAttr},
      {"reverse", &Reverse},   {"select", &Select},     {"selectattr", &SelectAttr},
      {"sort", &Sort},         {"sum", &Sum},           {"unique", &Unique},
  };
  auto it = kTable->find(name);
  return it == kTable->end() ? nullptr : it->second;
}

}  // namespace moeserve::jinja
