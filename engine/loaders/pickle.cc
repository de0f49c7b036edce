#include "engine/loaders/pickle.h"

#include <cstddef>
#include <cstring>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_format.h"
#include "common/absl_strings.h"
#include "common/status.h"

namespace moeserve::pickle {
namespace {

// What a resolved global stands for. Nothing here is ever imported or executed.
enum class Global : uint8_t {
  kOrderedDict,
  kRebuildTensorV2,
  kRebuildParameter,
  kRebuildParameterWithState,
  kStorageType,  // a torch.*Storage class, used only inside a persistent id
};

enum class Kind : uint8_t {
  kNone,
  kBool,
  kInt,
  kFloat,
  kString,
  kTuple,
  kList,
  kDict,  // dict or OrderedDict; items hold key, value, key, value, ...
  kGlobal,
  kStorage,  // a resolved persistent id; index into storages_
  kTensor,   // index into tensors_
};

std::string_view KindName(Kind kind) {
  constexpr std::string_view kNames[] = {"None", "bool", "int",    "float",   "str",   "tuple",
                                         "list", "dict", "global", "storage", "tensor"};
  return kNames[static_cast<int>(kind)];
}

struct Value {
  Kind kind = Kind::kNone;
  Global global = Global::kOrderedDict;  // kGlobal
  int64_t number = 0;                    // kBool, kInt; the index for kStorage, kTensor
  double real = 0;                       // kFloat
  std::string text;                      // kString; "module.name" for kGlobal
  std::vector<uint32_t> items;           // kTuple, kList, kDict
};

// The torch storage classes a state dict may name; those without a dtype are recognised
// so their tensors fail with "unsupported dtype" rather than "forbidden global".
struct StorageClass {
  std::string_view name;
  std::optional<DType> dtype;
};
constexpr StorageClass kStorageClasses[] = {
    {"FloatStorage", DType::kF32},         {"HalfStorage", DType::kF16},
    {"BFloat16Storage", DType::kBF16},     {"IntStorage", DType::kI32},
    {"LongStorage", std::nullopt},         {"DoubleStorage", std::nullopt},
    {"ShortStorage", std::nullopt},        {"CharStorage", std::nullopt},
    {"ByteStorage", std::nullopt},         {"BoolStorage", std::nullopt},
    {"ComplexFloatStorage", std::nullopt}, {"ComplexDoubleStorage", std::nullopt},
    {"QInt8Storage", std::nullopt},        {"QUInt8Storage", std::nullopt},
    {"QInt32Storage", std::nullopt},       {"QUInt4x2Storage", std::nullopt},
    {"QUInt2x4Storage", std::nullopt},
};

// Names of every pickle opcode (protocols 0-5), so a refused one is named in the error.
struct OpcodeName {
  uint8_t op;
  std::string_view name;
};
constexpr OpcodeName kOpcodeNames[] = {{'(', "MARK"},
                                       {'.', "STOP"},
                                       {'0', "POP"},
                                       {'1', "POP_MARK"},
                                       {'2', "DUP"},
                                       {'F', "FLOAT"},
                                       {'I', "INT"},
                                       {'J', "BININT"},
                                       {'K', "BININT1"},
                                       {'L', "LONG"},
                                       {'M', "BININT2"},
                                       {'N', "NONE"},
                                       {'P', "PERSID"},
                                       {'Q', "BINPERSID"},
                                       {'R', "REDUCE"},
                                       {'S', "STRING"},
                                       {'T', "BINSTRING"},
                                       {'U', "SHORT_BINSTRING"},
                                       {'V', "UNICODE"},
                                       {'X', "BINUNICODE"},
                                       {'a', "APPEND"},
                                       {'b', "BUILD"},
                                       {'c', "GLOBAL"},
                                       {'d', "DICT"},
                                       {'}', "EMPTY_DICT"},
                                       {'e', "APPENDS"},
                                       {'g', "GET"},
                                       {'h', "BINGET"},
                                       {'i', "INST"},
                                       {'j', "LONG_BINGET"},
                                       {'l', "LIST"},
                                       {']', "EMPTY_LIST"},
                                       {'o', "OBJ"},
                                       {'p', "PUT"},
                                       {'q', "BINPUT"},
                                       {'r', "LONG_BINPUT"},
                                       {'s', "SETITEM"},
                                       {'t', "TUPLE"},
                                       {')', "EMPTY_TUPLE"},
                                       {'u', "SETITEMS"},
                                       {'G', "BINFLOAT"},
                                       {0x80, "PROTO"},
                                       {0x81, "NEWOBJ"},
                                       {0x82, "EXT1"},
                                       {0x83, "EXT2"},
                                       {0x84, "EXT4"},
                                       {0x85, "TUPLE1"},
                                       {0x86, "TUPLE2"},
                                       {0x87, "TUPLE3"},
                                       {0x88, "NEWTRUE"},
                                       {0x89, "NEWFALSE"},
                                       {0x8a, "LONG1"},
                                       {0x8b, "LONG4"},
                                       {'B', "BINBYTES"},
                                       {'C', "SHORT_BINBYTES"},
                                       {0x8c, "SHORT_BINUNICODE"},
                                       {0x8d, "BINUNICODE8"},
                                       {0x8e, "BINBYTES8"},
                                       {0x8f, "EMPTY_SET"},
                                       {0x90, "ADDITEMS"},
                                       {0x91, "FROZENSET"},
                                       {0x92, "NEWOBJ_EX"},
                                       {0x93, "STACK_GLOBAL"},
                                       {0x94, "MEMOIZE"},
                                       {0x95, "FRAME"},
                                       {0x96, "BYTEARRAY8"},
                                       {0x97, "NEXT_BUFFER"},
                                       {0x98, "READONLY_BUFFER"}};

std::string_view NameOf(uint8_t op) {
  for (const OpcodeName& entry : kOpcodeNames) {
    if (entry.op == op) return entry.name;
  }
  return "unknown opcode";
}

class Unpickler {
 public:
  Unpickler(std::string_view bytes, std::string_view file, const PickleLimits& limits)
      : bytes_(bytes), file_(file), limits_(limits) {}

  absl::StatusOr<std::vector<PickledTensor>> Run() {
    while (true) {
      op_offset_ = pos_;
      if (pos_ >= bytes_.size()) return Error("truncated: no STOP opcode");
      op_ = static_cast<uint8_t>(bytes_[pos_++]);
      if (op_ == '.') break;
      MOESERVE_RETURN_IF_ERROR(Step());
    }
    if (stack_.size() != 1 || !marks_.empty()) {
      return Error(Cat("STOP with ", stack_.size(), " values and ", marks_.size(),
                       " marks on the stack; expected exactly one value"));
    }
    if (pos_ != bytes_.size()) {
      return Error(Cat(bytes_.size() - pos_, " trailing bytes after STOP"));
    }
    return Extract(stack_.back());
  }

 private:
  absl::Status Step() {
    // Every push and mark costs at least one input byte; this bounds what they cost us.
    if (static_cast<int64_t>(stack_.size() + marks_.size() + memo_.size()) > limits_.max_values) {
      return Error(Cat("stack, marks and memo exceed ", limits_.max_values, " entries"));
    }
    switch (op_) {
      case 0x80: {  // PROTO
        MOESERVE_ASSIGN_OR_RETURN(const uint64_t version, ReadLe(1));
        if (version < 2 || version > 5) return Error(Cat("protocol ", version));
        return absl::OkStatus();
      }
      case 0x95:  // FRAME: a length hint only
        return ReadLe(8).status();
      case '}':
        return PushNew(Kind::kDict);
      case ']':
        return PushNew(Kind::kList);
      case ')':
        return PushNew(Kind::kTuple);
      case '(':
        marks_.push_back(stack_.size());
        return absl::OkStatus();
      case 'X':
        return ReadString(4);
      case 0x8c:
        return ReadString(1);
      case 0x8d:
        return ReadString(8);
      case 'J': {
        MOESERVE_ASSIGN_OR_RETURN(const uint64_t v, ReadLe(4));
        return PushInt(static_cast<int32_t>(static_cast<uint32_t>(v)));
      }
      case 'K': {
        MOESERVE_ASSIGN_OR_RETURN(const uint64_t v, ReadLe(1));
        return PushInt(static_cast<int64_t>(v));
      }
      case 'M': {
        MOESERVE_ASSIGN_OR_RETURN(const uint64_t v, ReadLe(2));
        return PushInt(static_cast<int64_t>(v));
      }
      case 0x8a:
        return ReadLong1();
      case 'G':
        return ReadBinFloat();
      case 0x88:
      case 0x89: {
        MOESERVE_ASSIGN_OR_RETURN(const uint32_t index, NewValue(Kind::kBool));
        values_[index].number = op_ == 0x88 ? 1 : 0;
        stack_.push_back(index);
        return absl::OkStatus();
      }
      case 'N':
        return PushNew(Kind::kNone);
      case 't': {
        MOESERVE_ASSIGN_OR_RETURN(std::vector<uint32_t> items, PopMark());
        MOESERVE_ASSIGN_OR_RETURN(const uint32_t index, NewValue(Kind::kTuple));
        values_[index].items = std::move(items);
        stack_.push_back(index);
        return absl::OkStatus();
      }
      case 0x85:
        return MakeTuple(1);
      case 0x86:
        return MakeTuple(2);
      case 0x87:
        return MakeTuple(3);
      case 'q':
        return Put(1);
      case 'r':
        return Put(4);
      case 0x94:
        return Memoize(static_cast<uint32_t>(memo_.size()));
      case 'h':
        return Get(1);
      case 'j':
        return Get(4);
      case 's':
        return SetItem();
      case 'u':
        return SetItems();
      case 'a':
        return Append();
      case 'e':
        return Appends();
      case 'b':
        return Build();
      case 'Q':
        return PersistentId();
      case 'c':
        return GlobalOp();
      case 0x93:
        return StackGlobal();
      case 'R':
        return Reduce();
      default:
        return Error(absl::StrFormat("opcode %s (0x%02x) is not allowed in a state_dict pickle",
                                     Sv(NameOf(op_)), op_));
    }
  }

  // ---- reading the byte stream ----

  absl::StatusOr<uint64_t> ReadLe(int n) {
    if (bytes_.size() - pos_ < static_cast<size_t>(n)) return Error("truncated argument");
    uint64_t v = 0;
    for (int i = 0; i < n; ++i) {
      v |= static_cast<uint64_t>(static_cast<uint8_t>(bytes_[pos_ + i])) << (8 * i);
    }
    pos_ += n;
    return v;
  }

  absl::Status ReadString(int length_bytes) {
    MOESERVE_ASSIGN_OR_RETURN(const uint64_t length, ReadLe(length_bytes));
    if (length > static_cast<uint64_t>(limits_.max_string_bytes)) {
      return Error(
          Cat("string of ", length, " bytes exceeds the limit of ", limits_.max_string_bytes));
    }
    if (bytes_.size() - pos_ < length) return Error("truncated string");
    MOESERVE_ASSIGN_OR_RETURN(const uint32_t index, NewValue(Kind::kString));
    values_[index].text.assign(bytes_.substr(pos_, length));
    pos_ += length;
    stack_.push_back(index);
    return absl::OkStatus();
  }

  absl::Status ReadLong1() {
    MOESERVE_ASSIGN_OR_RETURN(const uint64_t n, ReadLe(1));
    if (n > 8) return Error(Cat("LONG1 of ", n, " bytes does not fit int64"));
    MOESERVE_ASSIGN_OR_RETURN(uint64_t v, ReadLe(static_cast<int>(n)));
    if (n > 0 && n < 8 && (v >> (8 * n - 1)) & 1) v |= ~uint64_t{0} << (8 * n);  // sign
    return PushInt(static_cast<int64_t>(v));
  }

  absl::Status ReadBinFloat() {
    if (bytes_.size() - pos_ < 8) return Error("truncated argument");
    uint64_t bits = 0;  // big-endian
    for (int i = 0; i < 8; ++i) bits = (bits << 8) | static_cast<uint8_t>(bytes_[pos_ + i]);
    pos_ += 8;
    MOESERVE_ASSIGN_OR_RETURN(const uint32_t index, NewValue(Kind::kFloat));
    std::memcpy(&values_[index].real, &bits, sizeof(bits));
    stack_.push_back(index);
    return absl::OkStatus();
  }

  // A "module\nname\n" pair of lines for GLOBAL.
  absl::StatusOr<std::string> ReadLine() {
    const size_t end = bytes_.find('\n', pos_);
    if (end == std::string_view::npos) return Error("truncated GLOBAL name");
    if (end - pos_ > static_cast<size_t>(limits_.max_string_bytes)) {
      return Error("GLOBAL name too long");
    }
    std::string line(bytes_.substr(pos_, end - pos_));
    pos_ = end + 1;
    return line;
  }

  // ---- the value arena and the stack ----

  absl::StatusOr<uint32_t> NewValue(Kind kind) {
    if (static_cast<int64_t>(values_.size()) >= limits_.max_values) {
      return Error(Cat("more than ", limits_.max_values, " objects"));
    }
    values_.push_back(Value{});
    values_.back().kind = kind;
    return static_cast<uint32_t>(values_.size() - 1);
  }

  absl::Status PushNew(Kind kind) {
    MOESERVE_ASSIGN_OR_RETURN(const uint32_t index, NewValue(kind));
    stack_.push_back(index);
    return absl::OkStatus();
  }

  absl::Status PushInt(int64_t v) {
    MOESERVE_ASSIGN_OR_RETURN(const uint32_t index, NewValue(Kind::kInt));
    values_[index].number = v;
    stack_.push_back(index);
    return absl::OkStatus();
  }

  // Values above the innermost mark may be popped; the mark protects the rest.
  size_t Floor() const { return marks_.empty() ? 0 : marks_.back(); }

  absl::StatusOr<uint32_t> Pop() {
    if (stack_.size() <= Floor()) return Error("stack underflow");
    const uint32_t top = stack_.back();
    stack_.pop_back();
    return top;
  }

  absl::StatusOr<uint32_t> Top() const {
    if (stack_.size() <= Floor()) return Error("stack underflow");
    return stack_.back();
  }

  absl::StatusOr<std::vector<uint32_t>> PopMark() {
    if (marks_.empty()) return Error("no MARK on the stack");
    const size_t mark = marks_.back();
    marks_.pop_back();
    std::vector<uint32_t> items(stack_.begin() + static_cast<std::ptrdiff_t>(mark), stack_.end());
    stack_.resize(mark);
    return items;
  }

  absl::Status MakeTuple(size_t n) {
    if (stack_.size() < Floor() + n) return Error("stack underflow");
    MOESERVE_ASSIGN_OR_RETURN(const uint32_t index, NewValue(Kind::kTuple));
    values_[index].items.assign(stack_.end() - static_cast<std::ptrdiff_t>(n), stack_.end());
    stack_.resize(stack_.size() - n);
    stack_.push_back(index);
    return absl::OkStatus();
  }

  absl::Status Put(int index_bytes) {
    MOESERVE_ASSIGN_OR_RETURN(const uint64_t key, ReadLe(index_bytes));
    return Memoize(static_cast<uint32_t>(key));
  }

  absl::Status Memoize(uint32_t key) {
    MOESERVE_ASSIGN_OR_RETURN(const uint32_t top, Top());
    memo_[key] = top;
    return absl::OkStatus();
  }

  absl::Status Get(int index_bytes) {
    MOESERVE_ASSIGN_OR_RETURN(const uint64_t key, ReadLe(index_bytes));
    const auto it = memo_.find(static_cast<uint32_t>(key));
    if (it == memo_.end()) return Error(Cat("memo key ", key, " was never stored"));
    stack_.push_back(it->second);
    return absl::OkStatus();
  }

  // ---- containers ----

  absl::Status SetItem() {
    MOESERVE_ASSIGN_OR_RETURN(const uint32_t value, Pop());
    MOESERVE_ASSIGN_OR_RETURN(const uint32_t key, Pop());
    MOESERVE_ASSIGN_OR_RETURN(const uint32_t dict, Expect(Top(), Kind::kDict, "SETITEM target"));
    values_[dict].items.push_back(key);
    values_[dict].items.push_back(value);
    return absl::OkStatus();
  }

  absl::Status SetItems() {
    MOESERVE_ASSIGN_OR_RETURN(std::vector<uint32_t> items, PopMark());
    if (items.size() % 2 != 0) return Error("SETITEMS with an odd number of values");
    MOESERVE_ASSIGN_OR_RETURN(const uint32_t dict, Expect(Top(), Kind::kDict, "SETITEMS target"));
    values_[dict].items.insert(values_[dict].items.end(), items.begin(), items.end());
    return absl::OkStatus();
  }

  absl::Status Append() {
    MOESERVE_ASSIGN_OR_RETURN(const uint32_t value, Pop());
    MOESERVE_ASSIGN_OR_RETURN(const uint32_t list, Expect(Top(), Kind::kList, "APPEND target"));
    values_[list].items.push_back(value);
    return absl::OkStatus();
  }

  absl::Status Appends() {
    MOESERVE_ASSIGN_OR_RETURN(std::vector<uint32_t> items, PopMark());
    MOESERVE_ASSIGN_OR_RETURN(const uint32_t list, Expect(Top(), Kind::kList, "APPENDS target"));
    values_[list].items.insert(values_[list].items.end(), items.begin(), items.end());
    return absl::OkStatus();
  }

  // BUILD sets an object's state. Allowed only where no code would run in Python: a dict
  // (an OrderedDict's __dict__, e.g. state_dict()'s _metadata, which is dropped) and a
  // tensor with no state.
  absl::Status Build() {
    MOESERVE_ASSIGN_OR_RETURN(const uint32_t state, Pop());
    MOESERVE_ASSIGN_OR_RETURN(const uint32_t target, Top());
    const Kind state_kind = values_[state].kind;
    const bool empty_state =
        state_kind == Kind::kNone || (state_kind == Kind::kDict && values_[state].items.empty());
    if (values_[target].kind == Kind::kDict && (state_kind == Kind::kDict || empty_state)) {
      return absl::OkStatus();
    }
    if (values_[target].kind == Kind::kTensor && empty_state) return absl::OkStatus();
    return Error(Cat("BUILD on a ", KindName(values_[target].kind), " with a ",
                     KindName(state_kind), " state is not allowed"));
  }

  // ---- globals, persistent ids and calls ----

  absl::Status GlobalOp() {
    MOESERVE_ASSIGN_OR_RETURN(const std::string module, ReadLine());
    MOESERVE_ASSIGN_OR_RETURN(const std::string name, ReadLine());
    return PushGlobal(module, name);
  }

  absl::Status StackGlobal() {
    MOESERVE_ASSIGN_OR_RETURN(const uint32_t name, Expect(Pop(), Kind::kString, "global name"));
    MOESERVE_ASSIGN_OR_RETURN(const uint32_t module, Expect(Pop(), Kind::kString, "global module"));
    // Copies: PushGlobal grows the arena, which would invalidate references into it.
    const std::string module_name = values_[module].text;
    const std::string global_name = values_[name].text;
    return PushGlobal(module_name, global_name);
  }

  absl::Status PushGlobal(const std::string& module, const std::string& name) {
    std::optional<Global> global;
    if (module == "collections" && name == "OrderedDict") {
      global = Global::kOrderedDict;
    } else if (module == "torch._utils" && name == "_rebuild_tensor_v2") {
      global = Global::kRebuildTensorV2;
    } else if (module == "torch._utils" && name == "_rebuild_parameter") {
      global = Global::kRebuildParameter;
    } else if (module == "torch._utils" && name == "_rebuild_parameter_with_state") {
      global = Global::kRebuildParameterWithState;
    } else if (module == "torch") {
      for (const StorageClass& storage : kStorageClasses) {
        if (name == storage.name) global = Global::kStorageType;
      }
    }
    if (!global) {
      return Error(Cat("global '", module, ".", name,
                       "' is not allowed (a state_dict pickle references only "
                       "collections.OrderedDict, torch._utils._rebuild_* and torch.*Storage)"));
    }
    MOESERVE_ASSIGN_OR_RETURN(const uint32_t index, NewValue(Kind::kGlobal));
    values_[index].global = *global;
    values_[index].text = Cat(module, ".", name);
    stack_.push_back(index);
    return absl::OkStatus();
  }

  // BINPERSID: ('storage', torch.XStorage, key, location, numel) -> a storage reference.
  absl::Status PersistentId() {
    MOESERVE_ASSIGN_OR_RETURN(const uint32_t pid, Expect(Pop(), Kind::kTuple, "persistent id"));
    const std::vector<uint32_t> f = values_[pid].items;
    if (f.size() != 5 || values_[f[0]].kind != Kind::kString || values_[f[0]].text != "storage") {
      return Error("persistent id is not ('storage', type, key, location, numel)");
    }
    const Value& type = values_[f[1]];
    if (type.kind != Kind::kGlobal || type.global != Global::kStorageType) {
      return Error("persistent id's storage type is not a torch.*Storage class");
    }
    if (values_[f[2]].kind != Kind::kString || values_[f[3]].kind != Kind::kString ||
        values_[f[4]].kind != Kind::kInt || values_[f[4]].number < 0) {
      return Error("persistent id has a malformed key, location or numel");
    }
    StorageRef ref;
    ref.key = values_[f[2]].text;
    ref.type_name = type.text;
    ref.location = values_[f[3]].text;
    ref.numel = values_[f[4]].number;
    const std::string_view class_name = std::string_view(type.text).substr(6);  // "torch."
    for (const StorageClass& storage : kStorageClasses) {
      if (class_name == storage.name) ref.dtype = storage.dtype;
    }
    MOESERVE_ASSIGN_OR_RETURN(const uint32_t index, NewValue(Kind::kStorage));
    values_[index].number = static_cast<int64_t>(storages_.size());
    storages_.push_back(std::move(ref));
    stack_.push_back(index);
    return absl::OkStatus();
  }

  absl::Status Reduce() {
    MOESERVE_ASSIGN_OR_RETURN(const uint32_t args_index,
                              Expect(Pop(), Kind::kTuple, "REDUCE args"));
    MOESERVE_ASSIGN_OR_RETURN(const uint32_t callable, Pop());
    if (values_[callable].kind != Kind::kGlobal ||
        values_[callable].global == Global::kStorageType) {
      return Error(Cat("REDUCE on a ", KindName(values_[callable].kind), " ",
                       values_[callable].text, " is not allowed"));
    }
    const std::vector<uint32_t> args = values_[args_index].items;
    const std::string fn = values_[callable].text;
    switch (values_[callable].global) {
      case Global::kOrderedDict:
        if (!args.empty()) return Error("collections.OrderedDict called with arguments");
        return PushNew(Kind::kDict);
      case Global::kRebuildTensorV2:
        return RebuildTensor(args);
      case Global::kRebuildParameter:
      case Global::kRebuildParameterWithState: {
        // (data, requires_grad, backward_hooks[, state]) -> data
        const size_t want = values_[callable].global == Global::kRebuildParameter ? 3 : 4;
        if (args.size() != want || values_[args[0]].kind != Kind::kTensor ||
            values_[args[1]].kind != Kind::kBool || !IsEmptyDict(args[2]) ||
            (want == 4 && !IsEmptyDict(args[3]) && values_[args[3]].kind != Kind::kNone)) {
          return Error(Cat(fn, " called with unexpected arguments"));
        }
        stack_.push_back(args[0]);
        return absl::OkStatus();
      }
      case Global::kStorageType:
        break;
    }
    return Error(Cat("REDUCE on ", fn, " is not allowed"));
  }

  // _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad,
  //                    backward_hooks[, metadata])
  absl::Status RebuildTensor(const std::vector<uint32_t>& args) {
    if ((args.size() != 6 && args.size() != 7) || values_[args[0]].kind != Kind::kStorage ||
        values_[args[1]].kind != Kind::kInt || values_[args[4]].kind != Kind::kBool ||
        !IsEmptyDict(args[5]) ||
        (args.size() == 7 && values_[args[6]].kind != Kind::kNone && !IsEmptyDict(args[6]))) {
      return Error(
          "_rebuild_tensor_v2 called with unexpected arguments (want storage, offset, size, "
          "stride, requires_grad, empty backward_hooks)");
    }
    PickledTensor tensor;
    tensor.storage = storages_[values_[args[0]].number];
    tensor.storage_offset = values_[args[1]].number;
    MOESERVE_RETURN_IF_ERROR(IntTuple(args[2], "size", &tensor.shape));
    MOESERVE_RETURN_IF_ERROR(IntTuple(args[3], "stride", &tensor.stride));
    if (tensor.shape.size() != tensor.stride.size()) {
      return Error(
          Cat("tensor of rank ", tensor.shape.size(), " has ", tensor.stride.size(), " strides"));
    }
    if (tensor.storage_offset < 0) return Error("negative storage offset");
    MOESERVE_ASSIGN_OR_RETURN(const uint32_t index, NewValue(Kind::kTensor));
    values_[index].number = static_cast<int64_t>(tensors_.size());
    tensors_.push_back(std::move(tensor));
    stack_.push_back(index);
    return absl::OkStatus();
  }

  absl::Status IntTuple(uint32_t index, std::string_view what, std::vector<int64_t>* out) {
    if (values_[index].kind != Kind::kTuple) return Error(Cat("tensor ", what, " is not a tuple"));
    const std::vector<uint32_t>& items = values_[index].items;
    if (static_cast<int64_t>(items.size()) > limits_.max_rank) {
      return Error(Cat("tensor ", what, " has rank ", items.size(), " > ", limits_.max_rank));
    }
    for (const uint32_t item : items) {
      if (values_[item].kind != Kind::kInt || values_[item].number < 0) {
        return Error(Cat("tensor ", what, " holds a non-int or negative value"));
      }
      out->push_back(values_[item].number);
    }
    return absl::OkStatus();
  }

  bool IsEmptyDict(uint32_t index) const {
    return values_[index].kind == Kind::kDict && values_[index].items.empty();
  }

  absl::StatusOr<uint32_t> Expect(absl::StatusOr<uint32_t> index, Kind kind,
                                  std::string_view what) const {
    if (!index.ok()) return index;
    if (values_[*index].kind != kind) {
      return Error(
          Cat(what, " is a ", KindName(values_[*index].kind), ", expected a ", KindName(kind)));
    }
    return index;
  }

  // ---- the result ----

  absl::StatusOr<std::vector<PickledTensor>> Extract(uint32_t root) const {
    if (values_[root].kind != Kind::kDict) {
      return absl::InvalidArgumentError(Cat(file_, ": the pickle holds a ",
                                            KindName(values_[root].kind),
                                            ", not a state_dict (a dict of name -> tensor)"));
    }
    const std::vector<uint32_t>& items = values_[root].items;
    std::vector<PickledTensor> out;
    out.reserve(items.size() / 2);
    std::unordered_set<std::string_view> names;
    for (size_t i = 0; i < items.size(); i += 2) {
      const Value& key = values_[items[i]];
      const Value& value = values_[items[i + 1]];
      if (key.kind != Kind::kString) {
        return absl::InvalidArgumentError(
            Cat(file_, ": state_dict key ", i / 2, " is a ", KindName(key.kind), ", not a str"));
      }
      if (value.kind != Kind::kTensor) {
        return absl::InvalidArgumentError(Cat(file_, ": state_dict entry '", key.text, "' is a ",
                                              KindName(value.kind), ", not a tensor"));
      }
      if (!names.insert(key.text).second) {
        return absl::InvalidArgumentError(
            Cat(file_, ": state_dict has tensor '", key.text, "' twice"));
      }
      PickledTensor tensor = tensors_[value.number];
      if (!tensor.storage.dtype) {
        return absl::InvalidArgumentError(
            Cat(file_, ": tensor '", key.text, "' has unsupported dtype (",
                tensor.storage.type_name, "); moeserve reads float32, float16, bfloat16, int32"));
      }
      tensor.name = key.text;
      out.push_back(std::move(tensor));
    }
    return out;
  }

  absl::Status Error(std::string_view what) const {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s: unpickling at offset %d (%s): %s", Sv(file_), op_offset_, Sv(NameOf(op_)), Sv(what)));
  }

  std::string_view bytes_;
  std::string_view file_;
  PickleLimits limits_;
  size_t pos_ = 0;
  size_t op_offset_ = 0;
  uint8_t op_ = 0;
  std::vector<Value> values_;
  std::vector<uint32_t> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint32_t, uint32_t> memo_;
  std::vector<StorageRef> storages_;
  std::vector<PickledTensor> tensors_;
};

}  // namespace

absl::StatusOr<std::vector<PickledTensor>> ParseStateDict(std::string_view bytes,
                                                          std::string_view file,
                                                          const PickleLimits& limits) {
  return Unpickler(bytes, file, limits).Run();
}

}  // namespace moeserve::pickle
