#include "engine/loaders/pickle.h"

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "engine/loaders/zip_reader.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/test_paths.h"

namespace moeserve::pickle {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using std::string_literals::operator""s;

// Emits pickle opcodes the way torch.save (protocol 2) does.
class Writer {
 public:
  Writer& Proto(int v = 2) { return Op(0x80).Byte(v); }
  Writer& Global(const std::string& module, const std::string& name) {
    out_ += 'c' + module + '\n' + name + '\n';
    return *this;
  }
  Writer& Str(const std::string& s) {
    Op('X');
    Le(s.size(), 4);
    out_ += s;
    return *this;
  }
  Writer& ShortStr(const std::string& s) { return Op(0x8c).Byte(s.size()).Raw(s); }
  Writer& Int(int64_t v) {
    if (v >= 0 && v < 256) return Op('K').Byte(v);
    Op('J');
    Le(static_cast<uint32_t>(v), 4);
    return *this;
  }
  Writer& Mark() { return Op('('); }
  Writer& Tuple() { return Op('t'); }
  Writer& Tuple2() { return Op(0x86); }
  Writer& EmptyTuple() { return Op(')'); }
  Writer& EmptyDict() { return Op('}'); }
  Writer& False() { return Op(0x89); }
  Writer& Reduce() { return Op('R'); }
  Writer& PersId() { return Op('Q'); }
  Writer& SetItems() { return Op('u'); }
  Writer& SetItem() { return Op('s'); }
  Writer& Build() { return Op('b'); }
  Writer& Put(int k) { return Op('q').Byte(k); }
  Writer& Get(int k) { return Op('h').Byte(k); }
  Writer& Stop() { return Op('.'); }
  Writer& Op(uint8_t op) { return Byte(op); }
  Writer& Byte(uint64_t b) {
    out_.push_back(static_cast<char>(b));
    return *this;
  }
  Writer& Raw(const std::string& s) {
    out_ += s;
    return *this;
  }
  void Le(uint64_t v, int n) {
    for (int i = 0; i < n; ++i) out_.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  }
  // OrderedDict()
  Writer& NewOrderedDict() { return Global("collections", "OrderedDict").EmptyTuple().Reduce(); }
  // _rebuild_tensor_v2(('storage', torch.<type>, key, 'cpu', numel), offset, size, stride,
  //                    False, OrderedDict()) with a 2-d shape.
  Writer& Tensor(const std::string& type, const std::string& key, int64_t numel, int64_t offset,
                 int64_t rows, int64_t cols, int64_t stride0, int64_t stride1) {
    Global("torch._utils", "_rebuild_tensor_v2").Mark();
    Mark().Str("storage").Global("torch", type).Str(key).Str("cpu").Int(numel).Tuple().PersId();
    Int(offset).Int(rows).Int(cols).Tuple2().Int(stride0).Int(stride1).Tuple2();
    return False().NewOrderedDict().Tuple().Reduce();
  }
  const std::string& bytes() const { return out_; }

 private:
  std::string out_;
};

// {"w": [2,3] float at offset 1 of storage "0", "b": [1,4] half of storage "1"} with an
// _metadata BUILD, as state_dict() writes it.
std::string ValidStateDict() {
  Writer w;
  w.Proto().NewOrderedDict().Put(0).Mark();
  w.Str("w").Tensor("FloatStorage", "0", 7, 1, 2, 3, 3, 1);
  w.Str("b").Tensor("HalfStorage", "1", 4, 0, 1, 4, 4, 1);
  w.SetItems();
  w.EmptyDict().Str("_metadata").NewOrderedDict().Str("").EmptyDict().Str("version").Int(1);
  w.SetItem().SetItem().SetItem().Build().Stop();
  return w.bytes();
}

absl::Status ParseError(const std::string& bytes, const PickleLimits& limits = {}) {
  return ParseStateDict(bytes, "test.bin", limits).status();
}

// The message as std::string, so a failed match prints text rather than characters.
std::string Msg(const absl::Status& status) { return std::string(status.message()); }

TEST(PickleTest, ParsesAStateDict) {
  absl::StatusOr<std::vector<PickledTensor>> tensors = ParseStateDict(ValidStateDict(), "x");
  ASSERT_TRUE(tensors.ok()) << tensors.status();
  ASSERT_EQ(tensors->size(), 2u);
  const PickledTensor& w = (*tensors)[0];
  EXPECT_EQ(w.name, "w");
  EXPECT_EQ(w.storage.key, "0");
  EXPECT_EQ(w.storage.type_name, "torch.FloatStorage");
  EXPECT_EQ(w.storage.dtype, DType::kF32);
  EXPECT_EQ(w.storage.location, "cpu");
  EXPECT_EQ(w.storage.numel, 7);
  EXPECT_EQ(w.storage_offset, 1);
  EXPECT_THAT(w.shape, ElementsAre(2, 3));
  EXPECT_THAT(w.stride, ElementsAre(3, 1));
  EXPECT_EQ((*tensors)[1].name, "b");
  EXPECT_EQ((*tensors)[1].storage.dtype, DType::kF16);
}

TEST(PickleTest, AcceptsProtocol4StackGlobalFrameAndMemoize) {
  Writer w;
  w.Proto(4).Op(0x95).Raw(std::string(8, '\0'));  // FRAME
  w.ShortStr("collections").Op(0x94).ShortStr("OrderedDict").Op(0x94).Op(0x93).Op(0x94);
  w.EmptyTuple().Reduce().Op(0x94);
  w.ShortStr("t").Tensor("BFloat16Storage", "k", 6, 0, 3, 2, 1, 3).SetItem().Stop();
  absl::StatusOr<std::vector<PickledTensor>> tensors = ParseStateDict(w.bytes(), "x");
  ASSERT_TRUE(tensors.ok()) << tensors.status();
  ASSERT_EQ(tensors->size(), 1u);
  EXPECT_EQ((*tensors)[0].storage.dtype, DType::kBF16);
  EXPECT_THAT((*tensors)[0].stride, ElementsAre(1, 3));
}

TEST(PickleTest, RebuildParameterUnwrapsTheTensor) {
  Writer w;
  w.Proto().EmptyDict().Str("p").Global("torch._utils", "_rebuild_parameter").Mark();
  w.Tensor("IntStorage", "0", 2, 0, 1, 2, 2, 1).Op(0x88).NewOrderedDict().Tuple().Reduce();
  w.SetItem().Stop();
  absl::StatusOr<std::vector<PickledTensor>> tensors = ParseStateDict(w.bytes(), "x");
  ASSERT_TRUE(tensors.ok()) << tensors.status();
  EXPECT_EQ((*tensors)[0].storage.dtype, DType::kI32);
}

TEST(PickleTest, ForbiddenGlobalsAreNamed) {
  for (const auto& [module, name] :
       std::vector<std::pair<std::string, std::string>>{{"os", "system"},
                                                        {"builtins", "eval"},
                                                        {"posix", "system"},
                                                        {"torch", "load"},
                                                        {"torch._utils", "_rebuild_qtensor"},
                                                        {"collections", "defaultdict"}}) {
    Writer w;
    w.Proto().Global(module, name).Str("id").Op(0x85).Reduce().Stop();
    const absl::Status status = ParseError(w.bytes());
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(Msg(status), HasSubstr("'" + module + "." + name + "'"));
    EXPECT_THAT(Msg(status), HasSubstr("test.bin"));
    EXPECT_THAT(Msg(status), HasSubstr("offset 2"));
  }
}

TEST(PickleTest, ForbiddenStackGlobalIsNamed) {
  Writer w;
  w.Proto(4).ShortStr("posix").ShortStr("system").Op(0x93).Stop();
  EXPECT_THAT(Msg(ParseError(w.bytes())), HasSubstr("'posix.system'"));
}

TEST(PickleTest, DisallowedOpcodesAreNamedWithOffset) {
  struct Case {
    std::string bytes;
    std::string expect;
  };
  const std::vector<Case> cases = {
      {"\x80\x02}\xff.", "0xff"},
      {"\x80\x02(ios\nsystem\n.", "INST"},
      {"\x80\x02}2.", "DUP"},
      {"\x80\x02(cos\nsystem\no.", "'os.system'"},
      {"\x80\x02}0.", "POP"},
      {"\x80\x02\x82\x01.", "EXT1"},
      {"\x80\x02U\x01"
       "a.",
       "SHORT_BINSTRING"},
      {"\x80\x02}\x81.", "NEWOBJ"},
      {"\x80\x02I1\n.", "INT"},
  };
  for (const Case& c : cases) {
    const absl::Status status = ParseError(c.bytes);
    EXPECT_FALSE(status.ok());
    EXPECT_THAT(Msg(status), HasSubstr(c.expect)) << c.expect;
  }
  EXPECT_THAT(Msg(ParseError("\x80\x02}\xff.")), HasSubstr("offset 3"));
}

TEST(PickleTest, ReduceOnlyOnWhitelistedCallables) {
  Writer storage_call;  // a storage class is not callable here
  storage_call.Proto().Global("torch", "FloatStorage").EmptyTuple().Reduce().Stop();
  EXPECT_THAT(Msg(ParseError(storage_call.bytes())), HasSubstr("REDUCE"));
  Writer dict_call;  // REDUCE on a non-global
  dict_call.Proto().EmptyDict().EmptyTuple().Reduce().Stop();
  EXPECT_THAT(Msg(ParseError(dict_call.bytes())), HasSubstr("REDUCE on a dict"));
  Writer od_args;  // OrderedDict with arguments would iterate them
  od_args.Proto().Global("collections", "OrderedDict").Int(1).Op(0x85).Reduce().Stop();
  EXPECT_FALSE(ParseError(od_args.bytes()).ok());
}

TEST(PickleTest, UnsupportedDtypeNamesTheTensor) {
  Writer w;
  w.Proto().EmptyDict().Str("position_ids").Tensor("LongStorage", "0", 4, 0, 1, 4, 4, 1);
  w.SetItem().Stop();
  const absl::Status status = ParseError(w.bytes());
  EXPECT_THAT(Msg(status), HasSubstr("unsupported dtype"));
  EXPECT_THAT(Msg(status), HasSubstr("position_ids"));
  EXPECT_THAT(Msg(status), HasSubstr("torch.LongStorage"));
}

TEST(PickleTest, RejectsMalformedStateDicts) {
  Writer list_root;
  list_root.Proto().Op(']').Stop();
  EXPECT_THAT(Msg(ParseError(list_root.bytes())), HasSubstr("not a state_dict"));
  Writer int_value;
  int_value.Proto().EmptyDict().Str("x").Int(3).SetItem().Stop();
  EXPECT_THAT(Msg(ParseError(int_value.bytes())), HasSubstr("'x' is a int"));
  Writer dup;
  dup.Proto().EmptyDict().Mark();
  dup.Str("x").Tensor("FloatStorage", "0", 1, 0, 1, 1, 1, 1);
  dup.Str("x").Tensor("FloatStorage", "0", 1, 0, 1, 1, 1, 1);
  dup.SetItems().Stop();
  EXPECT_THAT(Msg(ParseError(dup.bytes())), HasSubstr("twice"));
  Writer negative;
  negative.Proto().EmptyDict().Str("x").Tensor("FloatStorage", "0", 4, 0, 2, 2, -1, 1);
  negative.SetItem().Stop();
  EXPECT_THAT(Msg(ParseError(negative.bytes())), HasSubstr("negative"));
  Writer build_tensor;  // BUILD with real state on a tensor
  build_tensor.Proto().EmptyDict().Str("x").Tensor("FloatStorage", "0", 1, 0, 1, 1, 1, 1);
  build_tensor.EmptyDict().Str("a").Int(1).SetItem().Build().SetItem().Stop();
  EXPECT_THAT(Msg(ParseError(build_tensor.bytes())), HasSubstr("BUILD"));
  Writer bad_pid;
  bad_pid.Proto().Str("storage").Op(0x85).PersId().Stop();
  EXPECT_THAT(Msg(ParseError(bad_pid.bytes())), HasSubstr("persistent id"));
  EXPECT_THAT(Msg(ParseError("\x80\x02}h\x05."s)), HasSubstr("memo key 5"));
  EXPECT_THAT(Msg(ParseError("\x80\x02}")), HasSubstr("no STOP"));
  EXPECT_THAT(Msg(ParseError("\x80\x02}.junk")), HasSubstr("trailing"));
  EXPECT_THAT(Msg(ParseError("\x80\x02}}.")), HasSubstr("exactly one"));
  EXPECT_THAT(Msg(ParseError("\x80\x02s.")), HasSubstr("underflow"));
  EXPECT_THAT(Msg(ParseError("\x80\x02\x8a\x09" + std::string(9, '\1') + ".")), HasSubstr("LONG1"));
  EXPECT_THAT(Msg(ParseError(std::string("\x80\x02X\xff\xff\xff\x7f", 7))), HasSubstr("string"));
  EXPECT_THAT(Msg(ParseError("\x80\x09}.")), HasSubstr("protocol 9"));
}

TEST(PickleTest, MarkProtectsTheStackBelowIt) {
  // SETITEM inside a MARK may not reach the dict below the mark.
  EXPECT_THAT(Msg(ParseError("\x80\x02}(X\x01\x00\x00\x00"
                             "aK\x01s."s)),
              HasSubstr("underflow"));
}

TEST(PickleTest, SelfReferenceDoesNotRecurse) {
  // l = []; l.append(l); {"x": l} -> rejected (not a tensor), without recursing.
  EXPECT_FALSE(ParseError("\x80\x02}X\x01\x00\x00\x00x]q\x00h\x00"
                          "as."s)
                   .ok());
}

TEST(PickleTest, LimitsBoundMemory) {
  PickleLimits limits;
  limits.max_values = 1000;
  std::string many = "\x80\x02";
  for (int i = 0; i < 2000; ++i) many += ')';
  EXPECT_THAT(Msg(ParseError(many + ".", limits)), HasSubstr("1000"));
  std::string gets = "\x80\x02}q\x00"s;
  for (int i = 0; i < 2000; ++i) gets += "h\x00"s;
  EXPECT_THAT(Msg(ParseError(gets + ".", limits)), HasSubstr("1000"));
  std::string marks = "\x80\x02";
  for (int i = 0; i < 2000; ++i) marks += '(';
  EXPECT_THAT(Msg(ParseError(marks + ".", limits)), HasSubstr("1000"));
  limits.max_string_bytes = 4;
  EXPECT_THAT(Msg(ParseError("\x80\x02X\x05\x00\x00\x00hello."s, limits)), HasSubstr("limit"));
  Writer rank;
  rank.Proto().EmptyDict().Str("x").Tensor("FloatStorage", "0", 1, 0, 1, 1, 1, 1);
  limits = PickleLimits{};
  limits.max_rank = 1;
  EXPECT_THAT(Msg(ParseError(rank.SetItem().Stop().bytes(), limits)), HasSubstr("rank"));
}

TEST(PickleTest, EveryTruncationFailsCleanly) {
  const std::string full = ValidStateDict();
  for (size_t n = 0; n < full.size(); ++n) {
    EXPECT_FALSE(ParseError(full.substr(0, n)).ok()) << n;
  }
}

TEST(PickleTest, CorruptBytesNeverCrash) {
  const std::string full = ValidStateDict();
  uint32_t state = 7;
  for (int iter = 0; iter < 20000; ++iter) {
    std::string bytes = full;
    for (int k = 0; k < 1 + iter % 4; ++k) {
      state = state * 1664525u + 1013904223u;
      bytes[(state >> 8) % bytes.size()] = static_cast<char>(state >> 24);
    }
    (void)ParseStateDict(bytes, "fuzz");
  }
}

// The data.pkl that torch.save wrote for tests/fixtures/torch_bin/basic.bin.
std::string TorchPickle() {
  absl::StatusOr<std::unique_ptr<ZipArchive>> zip =
      ZipArchive::Open(moeserve::testing::SourcePath("tests/fixtures/torch_bin/basic.bin"));
  if (!zip.ok()) return "";
  const ZipEntry* entry = (*zip)->Find("basic/data.pkl");
  if (entry == nullptr) return "";
  absl::StatusOr<ZipData> data = (*zip)->Read(*entry);
  return data.ok() ? std::string(reinterpret_cast<const char*>(data->data), data->size) : "";
}

TEST(PickleTest, ParsesWhatTorchWrites) {
  const std::string bytes = TorchPickle();
  ASSERT_FALSE(bytes.empty());
  absl::StatusOr<std::vector<PickledTensor>> tensors = ParseStateDict(bytes, "basic");
  ASSERT_TRUE(tensors.ok()) << tensors.status();
  EXPECT_EQ(tensors->size(), 12u);
  for (size_t n = 0; n < bytes.size(); ++n) EXPECT_FALSE(ParseError(bytes.substr(0, n)).ok());
  uint32_t state = 99;
  for (int iter = 0; iter < 20000; ++iter) {
    std::string mutated = bytes;
    state = state * 1664525u + 1013904223u;
    mutated[(state >> 8) % mutated.size()] = static_cast<char>(state >> 24);
    (void)ParseStateDict(mutated, "fuzz");
  }
}

}  // namespace
}  // namespace moeserve::pickle
