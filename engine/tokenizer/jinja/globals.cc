// Global functions (range, dict, namespace, raise_exception, strftime_now), the namespace
// object, native callables and argument binding.
#include <ctime>
#include <string>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "common/absl_strings.h"
#include "engine/tokenizer/jinja/builtins.h"
#include "engine/tokenizer/jinja/errors.h"
#include "engine/tokenizer/jinja/interpreter.h"

namespace moeserve::jinja {
namespace {

// jinja2's sandbox refuses larger ranges (MAX_RANGE).
constexpr int64_t kMaxRange = 100000;

class NativeFunction : public Object {
 public:
  NativeFunction(std::string_view name, NativeFn fn, Value self)
      : name_(name), fn_(fn), self_(std::move(self)) {}

  std::string_view type_name() const override { return "builtin_function_or_method"; }
  bool is_callable() const override { return true; }
  absl::StatusOr<Value> Call(const CallArgs& args, Interpreter& interpreter) override {
    return fn_(interpreter, self_, args);
  }

 private:
  std::string name_;
  NativeFn fn_;
  Value self_;
};

// jinja2's Namespace as transformers restricts it (no underscore-prefixed attributes).
class NamespaceObject : public Object {
 public:
  explicit NamespaceObject(Dict attrs) : attrs_(std::move(attrs)) {}

  std::string_view type_name() const override { return "Namespace"; }

  std::optional<Value> GetAttr(std::string_view name) const override {
    if (const Value* value = attrs_.Find(name); value != nullptr) return *value;
    return std::nullopt;
  }

  absl::Status SetAttr(std::string_view name, Value value) override {
    if (!name.empty() && name.front() == '_') {
      return RenderError(Cat(
          "Chat templates cannot store underscore-prefixed attributes on a namespace, but got '",
          name, "'. Please rename the attribute."));
    }
    attrs_.Set(name, std::move(value));
    return absl::OkStatus();
  }

  absl::StatusOr<std::string> Repr() const override {
    MOESERVE_ASSIGN_OR_RETURN(std::string attrs, jinja::Repr(Value::FromDict(attrs_)));
    return Cat("<Namespace ", attrs, ">");
  }

  void ReleaseReferences() override { attrs_ = Dict(); }

 private:
  Dict attrs_;
};

// dict(*args, **kwargs) as Python builds it.
absl::StatusOr<Dict> BuildDict(std::string_view callee, const CallArgs& args) {
  if (args.positional.size() > 1) {
    return RenderError(Cat(callee, " expected at most 1 argument, got ", args.positional.size()));
  }
  Dict dict;
  if (!args.positional.empty()) {
    const Value& source = args.positional.front();
    if (source.is_dict()) {
      dict = source.dict();
    } else {
      MOESERVE_ASSIGN_OR_RETURN(std::vector<Value> items, Iterate(source));
      for (const Value& item : items) {
        MOESERVE_ASSIGN_OR_RETURN(std::vector<Value> pair, Iterate(item));
        if (pair.size() != 2) {
          return RenderError("dictionary update sequence element has the wrong length");
        }
        if (!IsHashable(pair[0])) {
          return RenderError(Cat("unhashable type: '", TypeName(pair[0]), "'"));
        }
        dict.Set(pair[0], pair[1]);
      }
    }
  }
  for (const auto& [name, value] : args.keyword) dict.Set(name, value);
  return dict;
}

absl::StatusOr<Value> Range(Interpreter&, const Value&, const CallArgs& args) {
  if (!args.keyword.empty()) return RenderError("range() takes no keyword arguments");
  const auto& p = args.positional;
  if (p.empty() || p.size() > 3) {
    return RenderError(Cat("range expected 1 to 3 arguments, got ", p.size()));
  }
  for (const Value& v : p) {
    if (!v.is_integral()) {
      return RenderError(Cat("'", TypeName(v), "' object cannot be interpreted as an integer"));
    }
  }
  const int64_t start = p.size() == 1 ? 0 : p[0].int_value();
  const int64_t stop = p.size() == 1 ? p[0].int_value() : p[1].int_value();
  const int64_t step = p.size() == 3 ? p[2].int_value() : 1;
  if (step == 0) return RenderError("range() arg 3 must not be zero");
  std::vector<Value> items;
  for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
    if (static_cast<int64_t>(items.size()) >= kMaxRange) {
      return RenderError(
          "Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).");
    }
    items.push_back(Value::Int(i));
  }
  return Value::Seq(std::move(items), SeqKind::kRange);
}

absl::StatusOr<Value> DictFn(Interpreter&, const Value&, const CallArgs& args) {
  MOESERVE_ASSIGN_OR_RETURN(Dict dict, BuildDict("dict", args));
  return Value::FromDict(std::move(dict));
}

absl::StatusOr<Value> NamespaceFn(Interpreter& interpreter, const Value&, const CallArgs& args) {
  MOESERVE_ASSIGN_OR_RETURN(Dict attrs, BuildDict("namespace", args));
  auto ns = std::make_shared<NamespaceObject>(Dict());
  interpreter.TrackCycles(ns);
  for (const auto& [key, value] : attrs.entries()) {
    if (!key.is_string()) return RenderError("namespace attribute names must be strings");
    MOESERVE_RETURN_IF_ERROR(ns->SetAttr(key.str(), value));
  }
  return Value::FromObject(std::move(ns));
}

absl::StatusOr<Value> RaiseException(Interpreter&, const Value&, const CallArgs& args) {
  MOESERVE_ASSIGN_OR_RETURN(auto bound, BindArgs("raise_exception", args, {"message"}));
  if (!bound[0].has_value()) {
    return RenderError("raise_exception() missing 1 required positional argument: 'message'");
  }
  MOESERVE_ASSIGN_OR_RETURN(std::string message, ToStr(*bound[0]));
  return TemplateRaised(message);
}

absl::StatusOr<Value> StrftimeNow(Interpreter&, const Value&, const CallArgs& args) {
  MOESERVE_ASSIGN_OR_RETURN(auto bound, BindArgs("strftime_now", args, {"format"}));
  if (!bound[0].has_value() || !bound[0]->is_string()) {
    return RenderError("strftime_now() argument must be str");
  }
  const std::string& format = bound[0]->str();
  if (format.empty()) return Value::String("");
  const std::time_t now = std::time(nullptr);
  std::tm local;
  localtime_r(&now, &local);
  // strftime returns 0 both for "too small" and for an empty result; grow a few times.
  for (size_t size = 256; size <= 65536; size *= 4) {
    std::string buf(size, '\0');
    const size_t n = std::strftime(buf.data(), buf.size(), format.c_str(), &local);
    if (n > 0) {
      buf.resize(n);
      return Value::String(std::move(buf));
    }
  }
  return Value::String("");
}

Dict MakeGlobals() {
  Dict globals;
  globals.Set("range", MakeNativeFunction("range", &Range));
  globals.Set("dict", MakeNativeFunction("dict", &DictFn));
  globals.Set("namespace", MakeNativeFunction("namespace", &NamespaceFn));
  globals.Set("raise_exception", MakeNativeFunction("raise_exception", &RaiseException));
  globals.Set("strftime_now", MakeNativeFunction("strftime_now", &StrftimeNow));
  return globals;
}

}  // namespace

const Dict& Globals() {
  static const Dict* const kGlobals = new Dict(MakeGlobals());
  return *kGlobals;
}

bool IsUnsupportedGlobal(std::string_view name) {
  return name == "cycler" || name == "joiner" || name == "lipsum";
}

Value MakeNativeFunction(std::string_view name, NativeFn fn, Value self) {
  return Value::FromObject(std::make_shared<NativeFunction>(name, fn, std::move(self)));
}

absl::StatusOr<std::vector<std::optional<Value>>> BindArgs(
    std::string_view callee, const CallArgs& args, std::initializer_list<std::string_view> params) {
  std::vector<std::optional<Value>> bound(params.size());
  if (args.positional.size() > params.size()) {
    return RenderError(Cat(callee, "() takes at most ", params.size(), " argument(s) (",
                           args.positional.size(), " given)"));
  }
  for (size_t i = 0; i < args.positional.size(); ++i) bound[i] = args.positional[i];
  for (const auto& [name, value] : args.keyword) {
    size_t i = 0;
    for (std::string_view param : params) {
      if (param == name) break;
      ++i;
    }
    if (i == params.size()) {
      return RenderError(Cat(callee, "() got an unexpected keyword argument '", name, "'"));
    }
    if (bound[i].has_value()) {
      return RenderError(Cat(callee, "() got multiple values for argument '", name, "'"));
    }
    bound[i] = value;
  }
  return bound;
}

}  // namespace moeserve::jinja
