#include "engine/loaders/gguf_reader.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "engine/loaders/dequantize.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/gguf_writer.h"
#include "tests/testing/test_paths.h"

namespace moeserve::gguf {
namespace {

using ::moeserve::testing::GgufType;
using ::moeserve::testing::GgufValue;
using ::moeserve::testing::GgufWriter;
using ::moeserve::testing::kGgmlBF16;
using ::moeserve::testing::kGgmlF16;
using ::moeserve::testing::kGgmlF32;
using ::moeserve::testing::kGgmlI32;
using ::moeserve::testing::kGgmlQ4_0;
using ::moeserve::testing::kGgmlQ4_1;
using ::moeserve::testing::kGgmlQ4_K;
using ::moeserve::testing::kGgmlQ5_K;
using ::moeserve::testing::kGgmlQ6_K;
using ::moeserve::testing::kGgmlQ8_0;
using ::testing::HasSubstr;

std::string TempFile(const std::string& name) { return moeserve::testing::TempDir() + "/" + name; }

absl::StatusOr<std::unique_ptr<GgufFile>> OpenBytes(const std::string& name,
                                                    const std::vector<uint8_t>& bytes) {
  const std::string path = TempFile(name);
  if (absl::Status s = moeserve::testing::WriteBytes(path, bytes); !s.ok()) return s;
  return GgufFile::Open(path);
}

absl::StatusOr<std::unique_ptr<GgufFile>> OpenWriter(const std::string& name,
                                                     const GgufWriter& writer) {
  return OpenBytes(name, writer.Serialize());
}

std::vector<uint8_t> RandomBytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> byte(0, 255);
  std::vector<uint8_t> out(n);
  for (uint8_t& b : out) b = static_cast<uint8_t>(byte(rng));
  return out;
}

// Expects `status` to fail with `code` and a message naming the file and each of `parts`.
void ExpectError(const absl::Status& status, absl::StatusCode code, const std::string& path,
                 const std::vector<std::string>& parts) {
  EXPECT_EQ(status.code(), code) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr(path));
  for (const std::string& part : parts) {
    EXPECT_THAT(std::string(status.message()), HasSubstr(part));
  }
}

// --- Metadata ------------------------------------------------------------------------------

class MetadataRoundTrip : public ::testing::TestWithParam<uint32_t> {};

TEST_P(MetadataRoundTrip, EveryValueType) {
  GgufWriter w;
  w.SetVersion(GetParam());
  w.AddUint8("u8", 200);
  w.AddInt8("i8", -5);
  w.AddUint16("u16", 60000);
  w.AddInt16("i16", -30000);
  w.AddUint32("u32", 4000000000u);
  w.AddInt32("i32", -2000000000);
  w.AddUint64("u64", (uint64_t{1} << 63) + 5);
  w.AddInt64("i64", -(int64_t{1} << 40));
  w.AddFloat32("f32", 1.5f);
  w.AddFloat64("f64", -0.1);
  w.AddBool("yes", true);
  w.AddBool("no", false);
  w.AddString("str", "h\xc3\xa9llo");
  w.AddString("empty_str", "");
  w.AddStringArray("strs", {"a", "", "ccc"});
  w.AddFloat32Array("f32s", {0.25f, -3.0f});
  w.AddInt32Array("i32s", {1, -2, 3});
  w.AddUint32Array("u32s", {7, 4000000000u});
  w.AddInt64Array("i64s", {-(int64_t{1} << 50)});
  w.AddArray("f64s", GgufType::kFloat64, {GgufValue::Float64(2.5)});
  w.AddArray("empty_strs", GgufType::kString, {});
  w.AddArray("nested", GgufType::kArray,
             {GgufValue::Array(GgufType::kUint8, {GgufValue::Uint8(1), GgufValue::Uint8(2)}),
              GgufValue::Array(GgufType::kString, {GgufValue::String("x")})});
  auto file = OpenWriter("metadata.gguf", w);
  ASSERT_TRUE(file.ok()) << file.status();
  const GgufFile& f = **file;
  EXPECT_EQ(f.version(), GetParam());
  EXPECT_EQ(f.alignment(), 32u);
  EXPECT_EQ(f.metadata().size(), 22u);
  EXPECT_TRUE(f.tensors().empty());

  // Widths kept, values widened.
  EXPECT_EQ(f.Find("u8")->type, ValueType::kUint8);
  EXPECT_EQ(std::get<uint64_t>(f.Find("u8")->data), 200u);
  EXPECT_EQ(f.Find("i8")->type, ValueType::kInt8);
  EXPECT_EQ(std::get<int64_t>(f.Find("i8")->data), -5);
  EXPECT_EQ(f.Find("u16")->type, ValueType::kUint16);
  EXPECT_EQ(f.Find("i16")->type, ValueType::kInt16);
  EXPECT_EQ(f.Find("u32")->type, ValueType::kUint32);
  EXPECT_EQ(f.Find("i32")->type, ValueType::kInt32);
  EXPECT_EQ(f.Find("u64")->type, ValueType::kUint64);
  EXPECT_EQ(std::get<uint64_t>(f.Find("u64")->data), (uint64_t{1} << 63) + 5);
  EXPECT_EQ(f.Find("i64")->type, ValueType::kInt64);
  EXPECT_EQ(f.Find("f32")->type, ValueType::kFloat32);
  EXPECT_EQ(f.Find("f64")->type, ValueType::kFloat64);
  EXPECT_EQ(f.Find("yes")->type, ValueType::kBool);
  EXPECT_EQ(f.Find("str")->type, ValueType::kString);
  EXPECT_EQ(f.Find("missing"), nullptr);

  EXPECT_EQ(*f.GetInt("u8"), 200);
  EXPECT_EQ(*f.GetInt("i8"), -5);
  EXPECT_EQ(*f.GetInt("u16"), 60000);
  EXPECT_EQ(*f.GetInt("i16"), -30000);
  EXPECT_EQ(*f.GetInt("u32"), 4000000000);
  EXPECT_EQ(*f.GetInt("i32"), -2000000000);
  EXPECT_EQ(*f.GetInt("i64"), -(int64_t{1} << 40));
  EXPECT_EQ(*f.GetFloat("f32"), 1.5);
  EXPECT_EQ(*f.GetFloat("f64"), -0.1);
  EXPECT_TRUE(*f.GetBool("yes"));
  EXPECT_FALSE(*f.GetBool("no"));
  EXPECT_EQ(*f.GetString("str"), "h\xc3\xa9llo");
  EXPECT_EQ(*f.GetString("empty_str"), "");
  EXPECT_EQ(*f.GetStringArray("strs"), (std::vector<std::string>{"a", "", "ccc"}));
  EXPECT_EQ(*f.GetFloatArray("f32s"), (std::vector<double>{0.25, -3.0}));
  EXPECT_EQ(*f.GetFloatArray("f64s"), (std::vector<double>{2.5}));
  EXPECT_EQ(*f.GetIntArray("i32s"), (std::vector<int64_t>{1, -2, 3}));
  EXPECT_EQ(*f.GetIntArray("u32s"), (std::vector<int64_t>{7, 4000000000}));
  EXPECT_EQ(*f.GetIntArray("i64s"), (std::vector<int64_t>{-(int64_t{1} << 50)}));
  EXPECT_TRUE(f.GetStringArray("empty_strs")->empty());
  EXPECT_EQ(f.Find("empty_strs")->element_type, ValueType::kString);

  const Value* nested = f.Find("nested");
  ASSERT_NE(nested, nullptr);
  EXPECT_EQ(nested->type, ValueType::kArray);
  EXPECT_EQ(nested->element_type, ValueType::kArray);
  const auto& outer = std::get<std::vector<Value>>(nested->data);
  ASSERT_EQ(outer.size(), 2u);
  EXPECT_EQ(outer[0].element_type, ValueType::kUint8);
  const auto& bytes = std::get<std::vector<Value>>(outer[0].data);
  ASSERT_EQ(bytes.size(), 2u);
  EXPECT_EQ(std::get<uint64_t>(bytes[1].data), 2u);
  EXPECT_EQ(outer[1].element_type, ValueType::kString);
  EXPECT_EQ(std::get<std::string>(std::get<std::vector<Value>>(outer[1].data)[0].data), "x");
}

INSTANTIATE_TEST_SUITE_P(Versions, MetadataRoundTrip, ::testing::Values(2u, 3u));

TEST(GgufReaderTest, TypedGetterErrors) {
  GgufWriter w;
  w.AddInt32("int", 1);
  w.AddString("str", "s");
  w.AddUint64("huge", std::numeric_limits<uint64_t>::max());
  w.AddInt32Array("ints", {1});
  w.AddStringArray("strs", {"a"});
  w.AddArray("huge_ints", GgufType::kUint64, {GgufValue::Uint64(uint64_t{1} << 63)});
  const std::string path = TempFile("getters.gguf");
  ASSERT_TRUE(w.WriteTo(path).ok());
  auto file = GgufFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status();
  const GgufFile& f = **file;

  ExpectError(f.GetString("nope").status(), absl::StatusCode::kNotFound, path, {"'nope'"});
  ExpectError(f.GetIntArray("nope").status(), absl::StatusCode::kNotFound, path, {"'nope'"});
  ExpectError(f.GetString("int").status(), absl::StatusCode::kInvalidArgument, path,
              {"'int'", "int32", "string"});
  ExpectError(f.GetInt("str").status(), absl::StatusCode::kInvalidArgument, path, {"'str'"});
  ExpectError(f.GetFloat("int").status(), absl::StatusCode::kInvalidArgument, path, {"'int'"});
  ExpectError(f.GetBool("int").status(), absl::StatusCode::kInvalidArgument, path, {"'int'"});
  ExpectError(f.GetInt("huge").status(), absl::StatusCode::kInvalidArgument, path,
              {"'huge'", "int64"});
  ExpectError(f.GetInt("ints").status(), absl::StatusCode::kInvalidArgument, path, {"'ints'"});
  ExpectError(f.GetStringArray("ints").status(), absl::StatusCode::kInvalidArgument, path,
              {"'ints'", "array of int32"});
  ExpectError(f.GetIntArray("strs").status(), absl::StatusCode::kInvalidArgument, path, {"'strs'"});
  ExpectError(f.GetFloatArray("ints").status(), absl::StatusCode::kInvalidArgument, path,
              {"'ints'"});
  ExpectError(f.GetStringArray("str").status(), absl::StatusCode::kInvalidArgument, path,
              {"'str'"});
  ExpectError(f.GetIntArray("huge_ints").status(), absl::StatusCode::kInvalidArgument, path,
              {"'huge_ints'", "int64"});
}

// --- Tensors -------------------------------------------------------------------------------

struct ExpectedTensor {
  std::string name;
  std::vector<int64_t> shape;
  uint32_t ggml_type;
  std::optional<DType> dtype;
  size_t num_bytes;
};

class TensorRoundTrip : public ::testing::TestWithParam<uint32_t> {};

TEST_P(TensorRoundTrip, ShapesTypesOffsetsAndBytes) {
  const uint32_t alignment = GetParam();
  const std::vector<ExpectedTensor> expected = {
      {"f32", {3}, kGgmlF32, DType::kF32, 12},
      {"f16", {4, 2}, kGgmlF16, DType::kF16, 16},
      {"q8_0", {64, 2}, kGgmlQ8_0, DType::kQ8_0, 4 * 34},
      {"q4_0", {32}, kGgmlQ4_0, DType::kQ4_0, 18},
      {"q4_1", {32, 3}, kGgmlQ4_1, DType::kQ4_1, 3 * 20},
      {"q4_k", {256}, kGgmlQ4_K, DType::kQ4_K, 144},
      {"q6_k", {256, 1}, kGgmlQ6_K, DType::kQ6_K, 210},
      {"bf16", {2, 2, 2}, kGgmlBF16, DType::kBF16, 16},
      {"i32", {5}, kGgmlI32, DType::kI32, 20},
      {"q5_k", {512}, kGgmlQ5_K, std::nullopt, 2 * 176},
      {"q2_k", {256}, 10, std::nullopt, 84},
      {"f64", {3}, 28, std::nullopt, 24},
      {"four_d", {2, 3, 4, 5}, kGgmlF32, DType::kF32, 120 * 4},
  };
  GgufWriter w;
  w.AddString("general.architecture", "llama");
  if (alignment != 32) w.SetAlignment(alignment);
  for (size_t i = 0; i < expected.size(); ++i) {
    const ExpectedTensor& t = expected[i];
    w.AddTensor(t.name, t.shape, t.ggml_type, RandomBytes(t.num_bytes, i));
  }
  auto file = OpenWriter("tensors.gguf", w);
  ASSERT_TRUE(file.ok()) << file.status();
  const GgufFile& f = **file;
  EXPECT_EQ(f.alignment(), alignment);
  EXPECT_EQ(f.data_offset() % alignment, 0u);
  ASSERT_EQ(f.tensors().size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    const ExpectedTensor& e = expected[i];
    SCOPED_TRACE(e.name);
    const TensorInfo& t = f.tensors()[i];
    EXPECT_EQ(&t, f.FindTensor(e.name));
    EXPECT_EQ(t.name, e.name);
    EXPECT_EQ(t.shape, e.shape);
    EXPECT_EQ(t.ggml_type, e.ggml_type);
    EXPECT_EQ(t.dtype, e.dtype);
    EXPECT_EQ(t.num_bytes, static_cast<int64_t>(e.num_bytes));
    int64_t elements = 1;
    for (const int64_t d : e.shape) elements *= d;
    EXPECT_EQ(t.num_elements(), elements);
    EXPECT_EQ(t.offset % alignment, 0u);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(t.data) % alignment, 0u);
    const std::vector<uint8_t> bytes = RandomBytes(e.num_bytes, i);
    EXPECT_EQ(std::memcmp(t.data, bytes.data(), bytes.size()), 0);
  }
  EXPECT_EQ(f.FindTensor("absent"), nullptr);
}

INSTANTIATE_TEST_SUITE_P(Alignments, TensorRoundTrip, ::testing::Values(32u, 64u));

TEST(GgufReaderTest, F32TensorHelperRoundTrips) {
  GgufWriter w;
  const std::vector<float> values = {1.0f, -2.5f, 3.25f, 0.0f, 1e-3f, 7.0f};
  w.AddF32Tensor("w", {3, 2}, values);
  w.AddF16Tensor("h", {2}, {0.5f, -1.0f});
  auto file = OpenWriter("f32.gguf", w);
  ASSERT_TRUE(file.ok()) << file.status();
  const TensorInfo* t = (*file)->FindTensor("w");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->dtype, DType::kF32);
  std::vector<float> read(6);
  std::memcpy(read.data(), t->data, 24);
  EXPECT_EQ(read, values);
  const TensorInfo* h = (*file)->FindTensor("h");
  ASSERT_NE(h, nullptr);
  EXPECT_EQ(h->dtype, DType::kF16);
  float halves[2];
  ASSERT_TRUE(DequantizeRow(DType::kF16, h->data, halves, 2).ok());
  EXPECT_EQ(halves[0], 0.5f);
  EXPECT_EQ(halves[1], -1.0f);
}

TEST(GgufReaderTest, EmptyFileWithNoTensorsOrMetadataOpens) {
  auto file = OpenWriter("minimal.gguf", GgufWriter());
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_TRUE((*file)->metadata().empty());
  EXPECT_TRUE((*file)->tensors().empty());
}

// --- Truncation and corruption ---------------------------------------------------------------

TEST(GgufReaderTest, TruncationAtEveryLengthFails) {
  GgufWriter w;
  w.AddString("general.architecture", "llama");
  w.AddUint32("llama.block_count", 2);
  w.AddFloat32("llama.rope.freq_base", 10000.0f);
  w.AddBool("flag", true);
  w.AddStringArray("tokenizer.ggml.tokens", {"<s>", "</s>", "hello"});
  w.AddArray("nested", GgufType::kArray,
             {GgufValue::Array(GgufType::kInt16, {GgufValue::Int16(-1)})});
  w.AddF32Tensor("a", {4}, {1, 2, 3, 4});
  // The last tensor fills its aligned slot, so every shorter file cuts into something.
  w.AddF32Tensor("b", {8}, {1, 2, 3, 4, 5, 6, 7, 8});
  const std::vector<uint8_t> bytes = w.Serialize();
  const std::string path = TempFile("truncated.gguf");
  ASSERT_TRUE(moeserve::testing::WriteBytes(path, bytes).ok());
  auto full = GgufFile::Open(path);
  ASSERT_TRUE(full.ok()) << full.status();
  const TensorInfo* b = (*full)->FindTensor("b");
  ASSERT_EQ((*full)->data_offset() + b->offset + b->num_bytes, bytes.size());
  full->reset();

  for (size_t length = 0; length < bytes.size(); ++length) {
    SCOPED_TRACE(length);
    ASSERT_TRUE(moeserve::testing::WriteBytes(
                    path, std::vector<uint8_t>(bytes.begin(), bytes.begin() + length))
                    .ok());
    auto file = GgufFile::Open(path);
    ASSERT_FALSE(file.ok());
    EXPECT_EQ(file.status().code(), absl::StatusCode::kDataLoss) << file.status();
    EXPECT_THAT(std::string(file.status().message()), HasSubstr(path));
  }
}

TEST(GgufReaderTest, TruncationMessageNamesKeyAndArrayElement) {
  GgufWriter w;
  w.AddStringArray("tokenizer.ggml.tokens",
                   {"first token text", "second token text", "third token text"});
  std::vector<uint8_t> bytes = w.Serialize();
  // Cut in the middle of element 1's characters: the count still looks plausible.
  const size_t element1_chars = bytes.size() - (8 + 16) - 17;  // element 2, element 1's text
  bytes.resize(element1_chars + 5);
  const std::string path = TempFile("tokens.gguf");
  ASSERT_TRUE(moeserve::testing::WriteBytes(path, bytes).ok());
  ExpectError(GgufFile::Open(path).status(), absl::StatusCode::kDataLoss, path,
              {"truncated while reading metadata key 'tokenizer.ggml.tokens' (array element 1)"});
}

TEST(GgufReaderTest, RejectsBadMagic) {
  std::vector<uint8_t> bytes = GgufWriter().Serialize();
  bytes[0] = 'X';
  const std::string path = TempFile("magic.gguf");
  ASSERT_TRUE(moeserve::testing::WriteBytes(path, bytes).ok());
  ExpectError(GgufFile::Open(path).status(), absl::StatusCode::kInvalidArgument, path,
              {"not a GGUF file"});
}

TEST(GgufReaderTest, RejectsUnsupportedVersions) {
  const std::string path = TempFile("version.gguf");
  GgufWriter w;
  w.AddString("k", "v");
  w.SetVersion(1);
  ASSERT_TRUE(w.WriteTo(path).ok());
  ExpectError(GgufFile::Open(path).status(), absl::StatusCode::kInvalidArgument, path,
              {"version 1 is not supported"});
  w.SetVersion(4);
  ASSERT_TRUE(w.WriteTo(path).ok());
  ExpectError(GgufFile::Open(path).status(), absl::StatusCode::kInvalidArgument, path,
              {"version 4"});
  w.SetVersion(0x03000000);  // a big-endian v3 file read little-endian
  ASSERT_TRUE(w.WriteTo(path).ok());
  ExpectError(GgufFile::Open(path).status(), absl::StatusCode::kInvalidArgument, path,
              {"big-endian"});
}

TEST(GgufReaderTest, RejectsMissingFileAndDirectory) {
  EXPECT_EQ(GgufFile::Open(TempFile("does_not_exist.gguf")).status().code(),
            absl::StatusCode::kNotFound);
  const absl::Status dir = GgufFile::Open(moeserve::testing::TempDir()).status();
  EXPECT_FALSE(dir.ok());
  EXPECT_THAT(std::string(dir.message()), HasSubstr(moeserve::testing::TempDir()));
}

TEST(GgufReaderTest, RejectsTensorDataPastEndOfFile) {
  const std::string path = TempFile("past_eof.gguf");
  GgufWriter w;
  w.AddF32Tensor("ok", {8}, std::vector<float>(8, 1.0f));
  w.AddTensor("short", {64}, kGgmlF32, std::vector<uint8_t>(16));
  ASSERT_TRUE(w.WriteTo(path).ok());
  ExpectError(GgufFile::Open(path).status(), absl::StatusCode::kDataLoss, path,
              {"'short'", "past the end"});

  GgufWriter far;
  far.AddF32Tensor("ok", {8}, std::vector<float>(8, 1.0f));
  far.AddTensorInfoOnly("far", {8}, kGgmlF32, uint64_t{1} << 40);
  ASSERT_TRUE(far.WriteTo(path).ok());
  ExpectError(GgufFile::Open(path).status(), absl::StatusCode::kDataLoss, path, {"'far'"});

  // Offset + data start would wrap around 2^64.
  GgufWriter wrap;
  wrap.AddF32Tensor("ok", {8}, std::vector<float>(8, 1.0f));
  wrap.AddTensorInfoOnly("wrap", {8}, kGgmlF32,
                         std::numeric_limits<uint64_t>::max() & ~uint64_t{31});
  ASSERT_TRUE(wrap.WriteTo(path).ok());
  ExpectError(GgufFile::Open(path).status(), absl::StatusCode::kDataLoss, path, {"'wrap'"});
}

TEST(GgufReaderTest, RejectsMisalignedTensorOffset) {
  const std::string path = TempFile("misaligned.gguf");
  GgufWriter w;
  w.AddF32Tensor("ok", {16}, std::vector<float>(16, 1.0f));
  w.AddTensorInfoOnly("odd", {1}, kGgmlF32, 4);
  ASSERT_TRUE(w.WriteTo(path).ok());
  ExpectError(GgufFile::Open(path).status(), absl::StatusCode::kInvalidArgument, path,
              {"'odd'", "not aligned"});
}

TEST(GgufReaderTest, RejectsDuplicates) {
  const std::string path = TempFile("duplicates.gguf");
  GgufWriter keys;
  keys.AddUint32("general.file_type", 3);
  keys.AddString("general.file_type", "again");
  ASSERT_TRUE(keys.WriteTo(path).ok());
  ExpectError(GgufFile::Open(path).status(), absl::StatusCode::kInvalidArgument, path,
              {"duplicate metadata key 'general.file_type'"});

  GgufWriter tensors;
  tensors.AddF32Tensor("w", {8}, std::vector<float>(8));
  tensors.AddF32Tensor("w", {8}, std::vector<float>(8));
  ASSERT_TRUE(tensors.WriteTo(path).ok());
  ExpectError(GgufFile::Open(path).status(), absl::StatusCode::kInvalidArgument, path,
              {"duplicate tensor name 'w'"});
}

TEST(GgufReaderTest, RejectsUnknownGgmlTypes) {
  const std::string path = TempFile("ggml_type.gguf");
  for (const uint32_t id : {4u, 31u, 99u, 0xffffffffu}) {
    GgufWriter w;
    w.AddTensor("strange", {32}, id, std::vector<uint8_t>(256));
    ASSERT_TRUE(w.WriteTo(path).ok());
    ExpectError(GgufFile::Open(path).status(), absl::StatusCode::kInvalidArgument, path,
                {"'strange'", "unknown ggml type id " + std::to_string(id)});
  }
}

TEST(GgufReaderTest, RejectsBadShapes) {
  const std::string path = TempFile("shapes.gguf");
  const auto open_with = [&](std::vector<int64_t> shape, uint32_t type) {
    GgufWriter w;
    w.AddF32Tensor("pad", {8}, std::vector<float>(8));
    w.AddTensorInfoOnly("bad", std::move(shape), type, 0);
    EXPECT_TRUE(w.WriteTo(path).ok());
    return GgufFile::Open(path).status();
  };
  ExpectError(open_with({1, 1, 1, 1, 1}, kGgmlF32), absl::StatusCode::kInvalidArgument, path,
              {"'bad'", "5 dimensions"});
  ExpectError(open_with({33, 2}, kGgmlQ8_0), absl::StatusCode::kInvalidArgument, path,
              {"'bad'", "block size 32"});
  ExpectError(open_with({int64_t{1} << 40, int64_t{1} << 40}, kGgmlF32),
              absl::StatusCode::kInvalidArgument, path, {"'bad'"});
  ExpectError(open_with({int64_t{1} << 62}, kGgmlF32), absl::StatusCode::kInvalidArgument, path,
              {"'bad'", "too large"});
  ExpectError(open_with({-1}, kGgmlF32),  // written as 2^64 - 1
              absl::StatusCode::kInvalidArgument, path, {"'bad'", "too large"});
}

TEST(GgufReaderTest, Alignment) {
  const std::string path = TempFile("alignment.gguf");
  for (const uint32_t bad : {0u, 3u, 48u}) {
    GgufWriter w;
    w.AddUint32("general.alignment", bad);
    ASSERT_TRUE(w.WriteTo(path).ok());
    ExpectError(GgufFile::Open(path).status(), absl::StatusCode::kInvalidArgument, path,
                {"general.alignment", "power of two"});
  }
  GgufWriter wrong_type;
  wrong_type.AddString("general.alignment", "32");
  ASSERT_TRUE(wrong_type.WriteTo(path).ok());
  ExpectError(GgufFile::Open(path).status(), absl::StatusCode::kInvalidArgument, path,
              {"general.alignment"});

  // A tensor laid out at 32 in a file that claims 64: the data start moves and the offset
  // of the second tensor is no longer aligned.
  GgufWriter mismatch;
  mismatch.AddUint32("general.alignment", 64);
  mismatch.AddF32Tensor("a", {8}, std::vector<float>(8));
  mismatch.AddF32Tensor("b", {8}, std::vector<float>(8));
  ASSERT_TRUE(mismatch.WriteTo(path).ok());
  ExpectError(GgufFile::Open(path).status(), absl::StatusCode::kInvalidArgument, path,
              {"'b'", "not aligned to 64"});
}

// Byte positions in a file whose only key is "a" (24-byte header, then the key).
constexpr size_t kKeyLengthAt = 24;
constexpr size_t kValueTypeAt = kKeyLengthAt + 8 + 1;
constexpr size_t kValueAt = kValueTypeAt + 4;

template <typename T>
void Patch(std::vector<uint8_t>* bytes, size_t at, T value) {
  std::memcpy(bytes->data() + at, &value, sizeof(T));
}

TEST(GgufReaderTest, RejectsAbsurdLengthsAndCountsBeforeAllocating) {
  const std::string path = TempFile("absurd.gguf");
  const auto expect_rejected = [&](const std::vector<uint8_t>& bytes,
                                   const std::vector<std::string>& parts) {
    ASSERT_TRUE(moeserve::testing::WriteBytes(path, bytes).ok());
    const absl::Status status = GgufFile::Open(path).status();
    EXPECT_FALSE(status.ok());
    EXPECT_THAT(std::string(status.message()), HasSubstr(path));
    for (const std::string& part : parts) {
      EXPECT_THAT(std::string(status.message()), HasSubstr(part));
    }
  };
  GgufWriter w;
  w.AddString("a", "value");
  const std::vector<uint8_t> string_file = w.Serialize();

  std::vector<uint8_t> bytes = string_file;
  Patch<uint64_t>(&bytes, kKeyLengthAt, uint64_t{1} << 62);
  expect_rejected(bytes, {"key of metadata entry 0"});

  bytes = string_file;
  Patch<uint64_t>(&bytes, kValueAt, std::numeric_limits<uint64_t>::max());
  expect_rejected(bytes, {"'a'"});

  bytes = string_file;
  Patch<uint64_t>(&bytes, 16, uint64_t{1} << 60);  // kv count
  expect_rejected(bytes, {"metadata count"});

  bytes = string_file;
  Patch<uint64_t>(&bytes, 8, uint64_t{1} << 60);  // tensor count
  expect_rejected(bytes, {"tensor count"});

  GgufWriter array;
  array.AddArray("a", GgufType::kUint64, {GgufValue::Uint64(1)});
  bytes = array.Serialize();
  Patch<uint64_t>(&bytes, kValueAt + 4, uint64_t{1} << 61);  // element count
  expect_rejected(bytes, {"'a'", "array of 2305843009213693952 uint64"});
  bytes = array.Serialize();
  Patch<uint32_t>(&bytes, kValueAt, 13);  // element type
  expect_rejected(bytes, {"'a'", "unknown array element type 13"});
}

TEST(GgufReaderTest, RejectsBadValues) {
  const std::string path = TempFile("values.gguf");
  GgufWriter w;
  w.AddBool("a", true);
  std::vector<uint8_t> bytes = w.Serialize();
  bytes[kValueAt] = 2;
  ASSERT_TRUE(moeserve::testing::WriteBytes(path, bytes).ok());
  ExpectError(GgufFile::Open(path).status(), absl::StatusCode::kInvalidArgument, path,
              {"'a'", "bool value 2"});

  bytes = w.Serialize();
  Patch<uint32_t>(&bytes, kValueTypeAt, 13);
  ASSERT_TRUE(moeserve::testing::WriteBytes(path, bytes).ok());
  ExpectError(GgufFile::Open(path).status(), absl::StatusCode::kInvalidArgument, path,
              {"'a'", "unknown value type 13"});
}

TEST(GgufReaderTest, BoundsArrayNesting) {
  const auto nested = [](int depth) {
    GgufValue value = GgufValue::Array(GgufType::kUint8, {GgufValue::Uint8(1)});
    for (int i = 1; i < depth; ++i) value = GgufValue::Array(GgufType::kArray, {value});
    return value;
  };
  GgufWriter ok;
  ok.Add("deep", nested(4));
  EXPECT_TRUE(OpenWriter("nest_ok.gguf", ok).ok());

  GgufWriter too_deep;
  too_deep.Add("deep", nested(1000));
  const absl::Status status = OpenWriter("nest_deep.gguf", too_deep).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr("'deep'"));
}

// --- The real model --------------------------------------------------------------------------

TEST(GgufReaderTest, OpensSmolLm2) {
  const std::string path = moeserve::testing::DefaultModelPath();
  if (path.empty()) GTEST_SKIP() << "SmolLM2-135M-Instruct.Q4_1.gguf is not installed";
  auto file = GgufFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status();
  const GgufFile& f = **file;
  EXPECT_EQ(*f.GetString("general.architecture"), "llama");
  EXPECT_EQ(f.tensors().size(), 272u);
  EXPECT_EQ(f.GetStringArray("tokenizer.ggml.tokens")->size(), 49152u);

  const TensorInfo* q = f.FindTensor("blk.0.attn_q.weight");
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(q->shape, (std::vector<int64_t>{576, 576}));
  EXPECT_EQ(q->dtype, DType::kQ4_1);
  const TensorInfo* embd = f.FindTensor("token_embd.weight");
  ASSERT_NE(embd, nullptr);
  EXPECT_EQ(embd->shape, (std::vector<int64_t>{576, 49152}));
  EXPECT_EQ(embd->dtype, DType::kQ8_0);

  for (const TensorInfo* t : {q, embd}) {
    SCOPED_TRACE(t->name);
    std::vector<float> row(576, std::nanf(""));
    ASSERT_TRUE(DequantizeRow(*t->dtype, t->data, row.data(), 576).ok());
    double sum_squares = 0;
    for (const float v : row) {
      ASSERT_TRUE(std::isfinite(v));
      EXPECT_LT(std::abs(v), 10.0f);
      sum_squares += static_cast<double>(v) * v;
    }
    const double rms = std::sqrt(sum_squares / 576);
    EXPECT_GT(rms, 1e-4);
    EXPECT_LT(rms, 1.0);
  }
}

}  // namespace
}  // namespace moeserve::gguf
