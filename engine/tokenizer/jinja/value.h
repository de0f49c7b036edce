// The values a Jinja template computes with, modelled on the Python objects jinja2 sees:
// Undefined, None, bool, int, float, str (and Markup), list/tuple/dict views/iterators,
// insertion-ordered dicts, and objects (namespaces, loop state, callables). Strings, lists
// and dicts are immutable and shared by pointer, so copying a Value is cheap; objects are
// mutable (a namespace's attributes) and live only within one render.
#ifndef MOESERVE_ENGINE_TOKENIZER_JINJA_VALUE_H_
#define MOESERVE_ENGINE_TOKENIZER_JINJA_VALUE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace moeserve::jinja {

class Dict;
class Interpreter;
class Object;
class Value;

// Python has several sequence types that iterate alike but print and index differently.
enum class SeqKind : uint8_t {
  kList,
  kTuple,
  kDictKeys,    // dict.keys(): prints dict_keys([...]), not subscriptable
  kDictValues,  // dict.values()
  kDictItems,   // dict.items(): a sequence of 2-tuples
  kRange,       // range(): not printable here
  kIterator,    // a one-shot iterator/generator (|reverse, |map, |select, ...)
};

struct Sequence {
  std::vector<Value> items;
  SeqKind kind = SeqKind::kList;
  // kIterator only: items before `cursor` were consumed, as iterating a Python iterator
  // consumes it. Values never cross renders, so this needs no locking.
  mutable size_t cursor = 0;
};

class Value {
 public:
  enum class Kind : uint8_t {
    kUndefined,
    kNone,
    kBool,
    kInt,
    kFloat,
    kString,
    kSequence,
    kDict,
    kObject,
  };

  Value() = default;  // Undefined
  // `hint` is the error reported when the undefined value is used, e.g. "'x' is undefined".
  static Value Undefined(std::string hint);
  static Value None();
  static Value Bool(bool b);
  static Value Int(int64_t i);
  static Value Float(double d);
  static Value String(std::string s);
  static Value Markup(std::string s);  // jinja2's Markup (from |safe and |escape)
  static Value List(std::vector<Value> items);
  static Value Tuple(std::vector<Value> items);
  static Value Seq(std::vector<Value> items, SeqKind kind);
  static Value FromDict(Dict dict);
  static Value FromObject(std::shared_ptr<Object> object);

  Kind kind() const { return kind_; }
  bool is_undefined() const { return kind_ == Kind::kUndefined; }
  bool is_none() const { return kind_ == Kind::kNone; }
  bool is_bool() const { return kind_ == Kind::kBool; }
  bool is_int() const { return kind_ == Kind::kInt; }
  bool is_float() const { return kind_ == Kind::kFloat; }
  bool is_integral() const { return kind_ == Kind::kBool || kind_ == Kind::kInt; }
  bool is_number() const { return is_integral() || kind_ == Kind::kFloat; }
  bool is_string() const { return kind_ == Kind::kString; }
  bool is_markup() const { return kind_ == Kind::kString && markup_; }
  bool is_sequence() const { return kind_ == Kind::kSequence; }
  bool is_dict() const { return kind_ == Kind::kDict; }
  bool is_object() const { return kind_ == Kind::kObject; }

  bool bool_value() const { return scalar_.b; }  // REQUIRES: is_bool()
  int64_t int_value() const;                     // REQUIRES: is_integral(); True is 1
  double float_value() const;                    // REQUIRES: is_number()
  const std::string& str() const;                // REQUIRES: is_string()
  const Sequence& seq() const;                   // REQUIRES: is_sequence()
  const std::vector<Value>& items() const { return seq().items; }
  const Dict& dict() const;                       // REQUIRES: is_dict()
  const std::shared_ptr<Object>& object() const;  // REQUIRES: is_object()
  const std::string& undefined_hint() const;      // REQUIRES: is_undefined()

 private:
  using Ptr = std::variant<std::monostate, std::shared_ptr<const std::string>,
                           std::shared_ptr<const Sequence>, std::shared_ptr<const Dict>,
                           std::shared_ptr<Object>>;

  Kind kind_ = Kind::kUndefined;
  bool markup_ = false;
  union {
    bool b;
    int64_t i;
    double f;
  } scalar_{.i = 0};
  Ptr ptr_;  // string / undefined hint, sequence, dict or object
};

// An insertion-ordered dict with Python's key semantics (1, 1.0 and True are one key).
class Dict {
 public:
  using Entry = std::pair<Value, Value>;

  // Inserts or overwrites; an overwritten key keeps its position. REQUIRES: IsHashable(key).
  void Set(Value key, Value value);
  void Set(std::string_view key, Value value);
  const Value* Find(const Value& key) const;
  const Value* Find(std::string_view key) const;

  size_t size() const { return entries_.size(); }
  bool empty() const { return entries_.empty(); }
  const std::vector<Entry>& entries() const { return entries_; }

 private:
  std::vector<Entry> entries_;
  absl::flat_hash_map<std::string, size_t> string_index_;
};

struct CallArgs {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keyword;
};

// Namespaces, loop state, bound methods, macros and builtins. Defaults: no attributes,
// not callable, not printable.
class Object {
 public:
  virtual ~Object() = default;

  virtual std::string_view type_name() const = 0;  // as Python's type(x).__name__
  virtual std::optional<Value> GetAttr(std::string_view name) const;
  virtual absl::Status SetAttr(std::string_view name, Value value);
  virtual bool is_callable() const { return false; }
  virtual absl::StatusOr<Value> Call(const CallArgs& args, Interpreter& interpreter);
  virtual absl::StatusOr<std::string> Repr() const;
  // Drops the values this object holds. Objects that can close a reference cycle (a macro
  // holds the scope it is stored in; a namespace can hold itself) are registered with
  // Interpreter::TrackCycles, which calls this when the render ends so the cycle is freed.
  virtual void ReleaseReferences() {}
};

bool Truthy(const Value& v);                  // Python bool()
bool Equals(const Value& a, const Value& b);  // Python ==
bool IsHashable(const Value& v);
std::string_view TypeName(const Value& v);  // Python type name, for error messages

// Python str() appended to `out` (Undefined is ""); fails for values that print as
// interpreter internals in Python (functions, iterators), which no template relies on.
absl::Status AppendStr(const Value& v, std::string* out);
absl::StatusOr<std::string> ToStr(const Value& v);
absl::StatusOr<std::string> Repr(const Value& v);  // Python repr()

std::string FormatFloat(double d);           // Python repr(float): 1.0, 1e+16, 0.1
std::string ReprString(std::string_view s);  // Python repr(str): 'a', "it's", '\n'

// Python's iter(): the items a for loop visits (characters of a string, keys of a dict).
// Consumes iterators. Undefined iterates as empty.
absl::StatusOr<std::vector<Value>> Iterate(const Value& v);

}  // namespace moeserve::jinja

#endif  // MOESERVE_ENGINE_TOKENIZER_JINJA_VALUE_H_
