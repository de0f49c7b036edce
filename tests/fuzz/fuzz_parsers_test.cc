// Issue 3 ("Bad input"): every parser of untrusted bytes - GGUF (reader, model config,
// tokenizer), safetensors, the zip/pickle/torch.save stack, json_lite, Hugging Face
// config.json and tokenizer.json/tokenizer_config.json, SentencePiece tokenizer.model,
// Jinja chat templates and the request JSON of /v1/chat/completions - takes mutated
// fixtures and random bytes without a crash, hang, leak or sanitizer report (this binary is
// built with ASan and UBSan; see CMakeLists.txt and fuzz_harness.h for the knobs). Each
// target's default iteration count keeps the whole test near a minute on the 2-core CI
// machine.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <memory>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "engine/loaders/gguf_reader.h"
#include "engine/loaders/hf_config.h"
#include "engine/loaders/json_lite.h"
#include "engine/loaders/pickle.h"
#include "engine/loaders/safetensors_reader.h"
#include "engine/loaders/torch_bin_reader.h"
#include "engine/loaders/zip_reader.h"
#include "engine/model_config.h"
#include "engine/tokenizer/chat_template.h"
#include "engine/tokenizer/gguf_tokenizer.h"
#include "engine/tokenizer/hf_tokenizer.h"
#include "engine/tokenizer/jinja/template.h"
#include "engine/tokenizer/jinja/value.h"
#include "engine/tokenizer/sentencepiece_model.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "proto/chat_completion.h"
#include "proto/json_util.h"
#include "tests/fuzz/fuzz_harness.h"
#include "tests/testing/gguf_writer.h"
#include "tests/testing/jinja_json.h"
#include "tests/testing/test_paths.h"

namespace moeserve::fuzz {
namespace {

using Json = nlohmann::ordered_json;

// ---- Files -----------------------------------------------------------------------------

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << "cannot read " << path;
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::string Fixture(const std::string& relative) {
  return ReadFile(testing::SourcePath("tests/fixtures/" + relative));
}

void WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) Violation("cannot write " + path);
}

// Where file-reading parsers get their inputs: a directory on /dev/shm when there is one,
// because rewriting a file thousands of times is slow on disk (an ext4 truncate with
// online discard costs milliseconds); else this process's TempDir(). Removed at exit.
const std::string& WorkRoot() {
  static const std::string* const root = [] {
    std::error_code error;
    std::filesystem::path dir = "/dev/shm/moeserve_fuzz_" + std::to_string(::getpid());
    if (!std::filesystem::create_directories(dir, error) || error) {
      dir = testing::TempDir() + "/fuzz-work";
      std::filesystem::create_directories(dir);
    }
    std::atexit([] {
      std::error_code ignored;
      std::filesystem::remove_all(WorkRoot(), ignored);
    });
    return new std::string(dir.string());
  }();
  return *root;
}

// A directory for one target's files.
std::string WorkDir(const std::string& name) {
  const std::string dir = WorkRoot() + "/" + name;
  std::filesystem::create_directories(dir);
  return dir;
}

// Reads every byte of a tensor view: a view past its mapping faults here.
void Touch(const uint8_t* data, int64_t num_bytes) {
  if (num_bytes < 0) return Violation("negative tensor size");
  if (num_bytes > 0 && data == nullptr) return Violation("tensor with bytes but no data");
  volatile uint8_t sink = 0;
  for (int64_t i = 0; i < num_bytes; ++i) sink = sink + data[i];
  (void)sink;
}

void CheckTensorSource(const TensorSource& source) {
  for (const TensorView& t : source.tensors()) {
    Touch(t.data, t.num_bytes);
    if (source.Find(t.name) != &t) Violation("Find() misses tensor " + t.name);
  }
}

// ---- Using what a parser accepted --------------------------------------------------------

// Everything a tokenizer offers, on awkward text and ids out of range: the engine hands
// sampled ids (bounded by the model's vocabulary, not the tokenizer's) to Decode.
void ExerciseTokenizer(const Tokenizer& tok) {
  static const std::vector<std::string> kTexts = {
      "",
      "Hello world! 123 4567",
      "<|im_start|>user\nhi<|im_end|>\n<|endoftext|><s></s>",
      std::string("\xff\xfe\xc3 invalid \xe2\x82 utf-8 \xf0\x9f\x98", 22),
      "  \n\n\t  spaces  \r\n",
      "\xe6\x97\xa5\xe6\x9c\xac emoji \xf0\x9f\x98\x80 caf\xc3\xa9 I'm we'll",
      std::string(300, 'a') + std::string(40, ' '),
  };
  const int32_t vocab = tok.vocab_size();
  if (vocab < 0) return Violation("negative vocab_size");
  for (const std::string& text : kTexts) {
    for (bool special : {false, true}) {
      const std::vector<int32_t> ids = tok.Encode(text, special);
      for (int32_t id : ids) {
        if (id < 0 || id >= vocab) return Violation("Encode gave id " + std::to_string(id));
      }
      (void)tok.Decode(ids, special);
    }
  }
  const int32_t last = std::min(vocab, 4096);
  for (int32_t id = 0; id < last; ++id) {
    (void)tok.TokenBytes(id);
    (void)tok.IsSpecial(id);
  }
  const std::vector<int32_t> bad = {-1, vocab, vocab + 1, std::numeric_limits<int32_t>::max(),
                                    std::numeric_limits<int32_t>::min()};
  for (int32_t id : bad) {
    (void)tok.TokenBytes(id);
    (void)tok.IsSpecial(id);
  }
  (void)tok.Decode(bad, false);
  (void)tok.Decode(bad, true);
  (void)tok.FindToken("<|im_end|>");
  (void)tok.FindToken("");
  (void)tok.bos_id();
  (void)tok.eos_id();
  (void)tok.add_bos_token();
  (void)tok.stop_ids();
}

std::vector<ChatMessage> Conversation() {
  return {{"system", "Be brief."},
          {"user", "Hi <|im_end|> {{ x }}"},
          {"assistant", "Hello!"},
          {"user", std::string("\xff bad utf-8 \xc3", 14)}};
}

void ExerciseChatTemplate(const std::string& source) {
  absl::StatusOr<std::unique_ptr<ChatTemplate>> tmpl =
      ChatTemplate::Create(source, {"<s>", "</s>"});
  if (!tmpl.ok()) return;
  for (bool prompt : {false, true}) (void)(*tmpl)->Render(Conversation(), prompt);
}

// ---- GGUF -----------------------------------------------------------------------------

std::string Bytes(const std::vector<uint8_t>& v) { return std::string(v.begin(), v.end()); }

// A byte-level BPE vocabulary: the 256 byte tokens of the tiny Llama's tokenizer.json,
// three merges and the control tokens chat templates use.
struct TinyVocab {
  std::vector<std::string> tokens;
  std::vector<int32_t> types;
  std::vector<std::string> merges = {"\xc4\xa0 t", "h e", "\xc4\xa0t he"};
};

TinyVocab MakeTinyVocab() {
  TinyVocab v;
  const Json tokenizer = Json::parse(Fixture("tiny_llama/tokenizer/tokenizer.json"));
  v.tokens.resize(tokenizer["model"]["vocab"].size());
  for (const auto& [text, id] : tokenizer["model"]["vocab"].items()) {
    v.tokens.at(id.get<size_t>()) = text;
  }
  v.types.assign(v.tokens.size(), 1);  // normal
  for (const char* t : {"\xc4\xa0t", "he", "\xc4\xa0the"}) {
    v.tokens.push_back(t);
    v.types.push_back(1);
  }
  for (const char* t : {"<|endoftext|>", "<|im_start|>", "<|im_end|>"}) {
    v.tokens.push_back(t);
    v.types.push_back(3);  // control
  }
  return v;
}

void AddTokenizer(testing::GgufWriter& w, const TinyVocab& v) {
  w.AddString("tokenizer.ggml.model", "gpt2");
  w.AddString("tokenizer.ggml.pre", "smollm");
  w.AddStringArray("tokenizer.ggml.tokens", v.tokens);
  w.AddInt32Array("tokenizer.ggml.token_type", v.types);
  w.AddStringArray("tokenizer.ggml.merges", v.merges);
  w.AddUint32("tokenizer.ggml.bos_token_id", static_cast<uint32_t>(v.tokens.size()) - 2);
  w.AddUint32("tokenizer.ggml.eos_token_id", static_cast<uint32_t>(v.tokens.size()) - 1);
  w.AddBool("tokenizer.ggml.add_bos_token", false);
  w.AddString("tokenizer.chat_template",
              "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}"
              "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n"
              "{% endif %}");
}

// A one-layer Llama (every key ModelConfigFromGguf reads; with `moe`, Mixtral-style
// experts) with tensors of several ggml types, and the tokenizer.
std::string GgufModelSeed(const TinyVocab& v, bool moe) {
  constexpr int64_t kHidden = 8;
  testing::GgufWriter w;
  w.AddString("general.architecture", "llama");
  w.AddString("general.name", "fuzz");
  w.AddUint32("llama.block_count", 1);
  w.AddUint32("llama.context_length", 64);
  w.AddUint32("llama.embedding_length", kHidden);
  w.AddUint32("llama.feed_forward_length", 16);
  w.AddUint32("llama.attention.head_count", 2);
  w.AddUint32("llama.attention.head_count_kv", 1);
  w.AddUint32("llama.rope.dimension_count", 4);
  w.AddFloat32("llama.rope.freq_base", 10000.0f);
  w.AddFloat32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
  if (moe) {  // Mixtral-style, as llama.cpp writes it
    w.AddUint32("llama.expert_count", 4);
    w.AddUint32("llama.expert_used_count", 2);
    w.AddUint32("llama.expert_feed_forward_length", 16);
  }
  AddTokenizer(w, v);
  const int64_t vocab = static_cast<int64_t>(v.tokens.size());
  w.AddF32Tensor("token_embd.weight", {kHidden, vocab},
                 std::vector<float>(static_cast<size_t>(kHidden * vocab), 0.5f));
  w.AddF16Tensor("blk.0.attn_norm.weight", {kHidden}, std::vector<float>(kHidden, 1.0f));
  w.AddTensor("blk.0.attn_q.weight", {32, 2}, testing::kGgmlQ4_0,
              std::vector<uint8_t>(2 * 18, 0x11));  // one 18-byte block per row
  w.AddTensor("blk.0.attn_k.weight", {32, 1}, testing::kGgmlQ8_0, std::vector<uint8_t>(34, 0x22));
  w.AddTensor("blk.0.ffn_up.weight", {256, 1}, testing::kGgmlQ4_K, std::vector<uint8_t>(144, 0x33));
  return Bytes(w.Serialize());
}

// Metadata of every value type, nested arrays included, in a version-2 file.
std::string GgufAllTypesSeed() {
  using testing::GgufType;
  using testing::GgufValue;
  testing::GgufWriter w;
  w.SetVersion(2);
  w.SetAlignment(64);
  w.AddUint8("u8", 200);
  w.AddInt8("i8", -100);
  w.AddUint16("u16", 60000);
  w.AddInt16("i16", -30000);
  w.AddUint32("u32", 4000000000u);
  w.AddInt32("i32", -2000000000);
  w.AddUint64("u64", 18000000000000000000ull);
  w.AddInt64("i64", -9000000000000000000ll);
  w.AddFloat32("f32", 1.5f);
  w.AddFloat64("f64", -2.25);
  w.AddBool("bool", true);
  w.AddString("string", "text \xe2\x9c\x93");
  w.AddStringArray("strings", {"a", "", "ccc"});
  w.AddFloat32Array("floats", {1.0f, -0.0f, 3.5f});
  w.AddInt64Array("int64s", {1, -2, 3});
  w.AddUint32Array("uint32s", {7, 8});
  w.AddArray("nested", GgufType::kArray,
             {GgufValue::Array(GgufType::kUint8, {GgufValue::Uint8(1), GgufValue::Uint8(2)}),
              GgufValue::Array(GgufType::kString, {GgufValue::String("x")})});
  w.AddArray("empty", GgufType::kInt16, {});
  w.AddF32Tensor("t", {2, 3}, {1, 2, 3, 4, 5, 6});
  w.AddTensor("b", {4}, testing::kGgmlBF16, std::vector<uint8_t>(8, 0x3f));
  return Bytes(w.Serialize());
}

// GgufFile::Open, then every getter on every key and every tensor's bytes.
absl::StatusOr<std::unique_ptr<gguf::GgufFile>> OpenGguf(const std::string& path) {
  absl::StatusOr<std::unique_ptr<gguf::GgufFile>> file = gguf::GgufFile::Open(path);
  if (!file.ok()) return file;
  const gguf::GgufFile& f = **file;
  for (const auto& [key, value] : f.metadata()) {
    (void)f.GetString(key);
    (void)f.GetInt(key);
    (void)f.GetFloat(key);
    (void)f.GetBool(key);
    (void)f.GetStringArray(key);
    (void)f.GetIntArray(key);
    (void)f.GetFloatArray(key);
  }
  // With no tensor data the aligned data section may start past the end of the file.
  const uint64_t data_bytes =
      f.data_offset() <= f.file_size() ? f.file_size() - f.data_offset() : 0;
  for (const gguf::TensorInfo& t : f.tensors()) {
    (void)t.num_elements();
    if (t.offset > data_bytes || static_cast<uint64_t>(t.num_bytes) > data_bytes - t.offset) {
      Violation("tensor " + t.name + " lies outside the file");
      continue;
    }
    Touch(t.data, t.num_bytes);
    if (f.FindTensor(t.name) != &t) Violation("FindTensor() misses " + t.name);
  }
  return file;
}

FuzzTarget GgufTarget() {
  const TinyVocab vocab = MakeTinyVocab();
  FuzzTarget t;
  t.name = "gguf";
  t.seeds = {GgufModelSeed(vocab, /*moe=*/false), GgufModelSeed(vocab, /*moe=*/true),
             GgufAllTypesSeed()};
  t.dictionary = {"GGUF",
                  "general.alignment",
                  "llama.",
                  "tokenizer.ggml.",
                  std::string("\x08\x00\x00\x00", 4),
                  std::string("\x09\x00\x00\x00", 4)};
  t.iterations = 25000;
  const std::string path = WorkDir("gguf") + "/model.gguf";
  t.run = [path](const std::string& input) -> absl::Status {
    WriteFile(path, input);
    absl::StatusOr<std::unique_ptr<gguf::GgufFile>> file = OpenGguf(path);
    if (!file.ok()) return file.status();
    (void)ModelConfigFromGguf(**file);
    return absl::OkStatus();
  };
  return t;
}

// A SentencePiece-style ("llama") GGUF tokenizer: <unk>, <s>, </s>, the 256 byte tokens,
// then a few pieces with scores.
std::string GgufSpmTokenizerSeed() {
  std::vector<std::string> tokens = {"<unk>", "<s>", "</s>"};
  std::vector<int32_t> types = {2, 3, 3};  // unknown, control, control
  for (int b = 0; b < 256; ++b) {
    char hex[8];
    std::snprintf(hex, sizeof(hex), "<0x%02X>", b);
    tokens.push_back(hex);
    types.push_back(6);  // byte
  }
  for (const char* piece : {"\xe2\x96\x81", "h", "e", "l", "o", "\xe2\x96\x81h", "he", "ll",
                            "\xe2\x96\x81he", "llo", "\xe2\x96\x81hello"}) {
    tokens.push_back(piece);
    types.push_back(1);
  }
  std::vector<float> scores;
  for (size_t i = 0; i < tokens.size(); ++i) scores.push_back(-static_cast<float>(i));
  testing::GgufWriter w;
  w.AddString("general.architecture", "llama");
  w.AddString("tokenizer.ggml.model", "llama");
  w.AddStringArray("tokenizer.ggml.tokens", tokens);
  w.AddFloat32Array("tokenizer.ggml.scores", scores);
  w.AddInt32Array("tokenizer.ggml.token_type", types);
  w.AddUint32("tokenizer.ggml.bos_token_id", 1);
  w.AddUint32("tokenizer.ggml.eos_token_id", 2);
  w.AddUint32("tokenizer.ggml.unknown_token_id", 0);
  w.AddBool("tokenizer.ggml.add_space_prefix", true);
  return Bytes(w.Serialize());
}

// The tokenizer and chat template of a GGUF: seeds hold only tokenizer metadata, so the
// mutations land there.
FuzzTarget GgufTokenizerTarget() {
  const TinyVocab vocab = MakeTinyVocab();
  testing::GgufWriter w;
  w.AddString("general.architecture", "llama");
  AddTokenizer(w, vocab);
  FuzzTarget t;
  t.name = "gguf_tokenizer";
  t.seeds = {Bytes(w.Serialize()), GgufSpmTokenizerSeed()};
  t.dictionary = {"gpt2",
                  "smollm",
                  "llama3",
                  "qwen2",
                  "<|im_end|>",
                  "\xc4\xa0",
                  " ",
                  std::string("\x00\x00\x00\x00", 4),
                  std::string("\xff\xff\xff\x7f", 4)};
  t.iterations = 20000;
  const std::string path = WorkDir("gguf_tokenizer") + "/tokenizer.gguf";
  t.run = [path](const std::string& input) -> absl::Status {
    WriteFile(path, input);
    absl::StatusOr<std::unique_ptr<gguf::GgufFile>> file = OpenGguf(path);
    if (!file.ok()) return file.status();
    absl::StatusOr<std::unique_ptr<Tokenizer>> tok = LoadGgufTokenizer(**file);
    if (!tok.ok()) return tok.status();
    ExerciseTokenizer(**tok);
    if (absl::StatusOr<std::string> source = (*file)->GetString("tokenizer.chat_template");
        source.ok()) {
      ExerciseChatTemplate(*source);
    }
    return absl::OkStatus();
  };
  return t;
}

// ---- safetensors, zip, pickle, torch.save --------------------------------------------

const std::vector<std::string> kJsonTokens = {"{",
                                              "}",
                                              "[",
                                              "]",
                                              ",",
                                              ":",
                                              "\"",
                                              "\\u0000",
                                              "\\ud800",
                                              "\\\"",
                                              "null",
                                              "true",
                                              "false",
                                              "-",
                                              "1e400",
                                              "[[[[[[[[",
                                              "{\"a\":",
                                              "\xc3\x28",
                                              "\xed\xa0\x80",
                                              "\xf4\x90\x80\x80"};

std::vector<std::string> WithJsonTokens(std::vector<std::string> tokens) {
  tokens.insert(tokens.end(), kJsonTokens.begin(), kJsonTokens.end());
  return tokens;
}

FuzzTarget SafetensorsTarget() {
  FuzzTarget t;
  t.name = "safetensors";
  t.seeds = {Fixture("safetensors/tiny.safetensors"),
             Fixture("safetensors/sharded/model-00001-of-00002.safetensors"),
             Fixture("safetensors/sharded/model-00002-of-00002.safetensors"),
             Fixture("tiny_llama/safetensors/model.safetensors")};
  t.dictionary = WithJsonTokens({"\"dtype\"", "\"shape\"", "\"data_offsets\"", "\"F32\"", "\"F16\"",
                                 "\"BF16\"", "\"I32\"", "\"I64\"", "\"__metadata__\"",
                                 std::string("\xff\xff\xff\xff\xff\xff\xff\x7f", 8)});
  t.iterations = 20000;
  const std::string path = WorkDir("safetensors") + "/model.safetensors";
  t.run = [path](const std::string& input) -> absl::Status {
    WriteFile(path, input);
    absl::StatusOr<std::unique_ptr<TensorSource>> source = OpenSafetensors(path);
    if (!source.ok()) return source.status();
    CheckTensorSource(**source);
    return absl::OkStatus();
  };
  return t;
}

// A sharded directory whose index is the input (the shards stay valid).
FuzzTarget SafetensorsIndexTarget() {
  FuzzTarget t;
  t.name = "safetensors_index";
  t.seeds = {Fixture("safetensors/sharded/model.safetensors.index.json")};
  t.dictionary = WithJsonTokens({"\"weight_map\"", "\"metadata\"", "model-00001-of-00002",
                                 ".safetensors", "../", "/", "\"total_size\""});
  t.text = true;
  t.iterations = 20000;
  const std::string dir = WorkDir("safetensors_index");
  for (const char* shard :
       {"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"}) {
    WriteFile(dir + "/" + shard, Fixture(std::string("safetensors/sharded/") + shard));
  }
  t.run = [dir](const std::string& input) -> absl::Status {
    WriteFile(dir + "/model.safetensors.index.json", input);
    absl::StatusOr<std::unique_ptr<TensorSource>> source = OpenSafetensorsDir(dir);
    if (!source.ok()) return source.status();
    CheckTensorSource(**source);
    return absl::OkStatus();
  };
  return t;
}

std::vector<std::string> TorchBinFixtures(bool valid_only) {
  std::vector<std::string> files = {Fixture("torch_bin/basic.bin"),
                                    Fixture("tiny_llama/bin/pytorch_model.bin")};
  if (!valid_only) {
    for (const char* name : {"expanded.bin", "big_endian.bin", "compressed.bin", "int64.bin",
                             "evil_builtins_eval.bin", "evil_inst.bin", "evil_os_system.bin",
                             "evil_stack_global.bin", "evil_unknown_opcode.bin"}) {
      files.push_back(Fixture(std::string("torch_bin/") + name));
    }
  }
  return files;
}

const std::vector<std::string> kZipTokens = {"PK\x01\x02", "PK\x03\x04",
                                             "PK\x05\x06", "PK\x06\x06",
                                             "PK\x06\x07", std::string("\x01\x00\x1c\x00", 4),
                                             "data.pkl",   "/data/0",
                                             "byteorder",  "little"};

FuzzTarget ZipTarget() {
  FuzzTarget t;
  t.name = "zip";
  t.seeds = TorchBinFixtures(/*valid_only=*/true);
  t.extra_corpus = TorchBinFixtures(false);
  t.dictionary = kZipTokens;
  t.iterations = 30000;
  const std::string path = WorkDir("zip") + "/archive.zip";
  t.run = [path](const std::string& input) -> absl::Status {
    WriteFile(path, input);
    absl::StatusOr<std::unique_ptr<ZipArchive>> zip = ZipArchive::Open(path);
    if (!zip.ok()) return zip.status();
    for (const ZipEntry& entry : (*zip)->entries()) {
      if ((*zip)->Find(entry.name) == nullptr) Violation("Find() misses entry " + entry.name);
      absl::StatusOr<ZipData> data = (*zip)->Read(entry);
      if (!data.ok()) continue;
      if (data->size > input.size()) Violation("entry " + entry.name + " larger than the file");
      Touch(data->data, static_cast<int64_t>(data->size));
    }
    return absl::OkStatus();
  };
  return t;
}

FuzzTarget TorchBinTarget() {
  FuzzTarget t;
  t.name = "torch_bin";
  t.seeds = TorchBinFixtures(/*valid_only=*/true);
  t.extra_corpus = TorchBinFixtures(false);
  t.dictionary = kZipTokens;
  t.iterations = 25000;
  const std::string path = WorkDir("torch_bin") + "/pytorch_model.bin";
  t.run = [path](const std::string& input) -> absl::Status {
    WriteFile(path, input);
    absl::StatusOr<std::unique_ptr<TensorSource>> source = OpenTorchBin(path);
    if (!source.ok()) return source.status();
    CheckTensorSource(**source);
    return absl::OkStatus();
  };
  return t;
}

// The data.pkl of every torch.save fixture, read with the (sanitized) zip reader.
std::vector<std::string> Pickles(const std::vector<std::string>& archives) {
  std::vector<std::string> pickles;
  const std::string path = WorkDir("pickle_seeds") + "/archive.zip";
  for (const std::string& archive : archives) {
    WriteFile(path, archive);
    absl::StatusOr<std::unique_ptr<ZipArchive>> zip = ZipArchive::Open(path);
    EXPECT_TRUE(zip.ok()) << zip.status();
    if (!zip.ok()) continue;
    for (const ZipEntry& entry : (*zip)->entries()) {
      const std::string_view suffix = "/data.pkl";
      if (entry.name.size() < suffix.size() ||
          entry.name.compare(entry.name.size() - suffix.size(), suffix.size(), suffix) != 0) {
        continue;
      }
      absl::StatusOr<ZipData> data = (*zip)->Read(entry);
      if (data.ok()) {
        pickles.emplace_back(reinterpret_cast<const char*>(data->data), data->size);
      }
    }
  }
  return pickles;
}

FuzzTarget PickleTarget() {
  FuzzTarget t;
  t.name = "pickle";
  t.seeds = Pickles(TorchBinFixtures(/*valid_only=*/true));
  for (std::string& p : Pickles(TorchBinFixtures(false))) t.extra_corpus.push_back(p);
  // Opcodes of protocol 2 state dicts and the globals they name.
  t.dictionary = {"\x80\x02",
                  "}q\x00",
                  "(",
                  ")",
                  "t",
                  "R",
                  "b",
                  "u",
                  "s",
                  ".",
                  "Q",
                  "h",
                  "q",
                  "r",
                  "X",
                  "K",
                  "M",
                  "J",
                  "\x85",
                  "\x86",
                  "\x87",
                  "\x88",
                  "\x89",
                  "ctorch._utils\n_rebuild_tensor_v2\n",
                  "ccollections\nOrderedDict\n",
                  "ctorch\nFloatStorage\n",
                  "ctorch\nHalfStorage\n",
                  "cbuiltins\neval\n",
                  "X\x07\x00\x00\x00storage",
                  "\x8a\x08",
                  "\x8a\xff",
                  "X\xff\xff\xff\xff",
                  "T\xff\xff\xff\x7f",
                  "\x8c\xff",
                  "\x95"};
  t.iterations = 100000;
  t.run = [](const std::string& input) -> absl::Status {
    absl::StatusOr<std::vector<pickle::PickledTensor>> tensors =
        pickle::ParseStateDict(input, "fuzz/data.pkl");
    if (!tensors.ok()) return tensors.status();
    for (const pickle::PickledTensor& p : *tensors) {
      if (p.shape.size() != p.stride.size()) Violation("shape and stride ranks differ");
    }
    return absl::OkStatus();
  };
  return t;
}

// A torch.save directory whose pytorch_model.bin.index.json is the input.
FuzzTarget TorchBinIndexTarget() {
  FuzzTarget t;
  t.name = "torch_bin_index";
  const std::string shard = Fixture("torch_bin/basic.bin");
  const std::string dir = WorkDir("torch_bin_index");
  WriteFile(dir + "/pytorch_model-00001-of-00001.bin", shard);
  // The seed index lists every tensor of the shard.
  const std::string path = WorkDir("torch_bin_index_seed") + "/pytorch_model.bin";
  WriteFile(path, shard);
  absl::StatusOr<std::unique_ptr<TensorSource>> source = OpenTorchBin(path);
  EXPECT_TRUE(source.ok()) << source.status();
  Json index = {{"metadata", {{"total_size", 1}}}, {"weight_map", Json::object()}};
  if (source.ok()) {
    for (const TensorView& view : (*source)->tensors()) {
      index["weight_map"][view.name] = "pytorch_model-00001-of-00001.bin";
    }
  }
  t.seeds = {index.dump(2)};
  t.dictionary = WithJsonTokens({"\"weight_map\"", "pytorch_model-00001-of-00001.bin", "../"});
  t.text = true;
  t.iterations = 20000;
  t.run = [dir](const std::string& input) -> absl::Status {
    WriteFile(dir + "/pytorch_model.bin.index.json", input);
    absl::StatusOr<std::unique_ptr<TensorSource>> source = OpenTorchBinDir(dir);
    if (!source.ok()) return source.status();
    CheckTensorSource(**source);
    return absl::OkStatus();
  };
  return t;
}

// ---- JSON: json_lite, config.json, request bodies ---------------------------------------

std::vector<std::string> HfConfigs() {
  std::vector<std::string> configs;
  for (const char* name : {"llama", "llama3", "llama3_moe", "llama_moe", "llama_moe_linear",
                           "mixtral", "olmoe", "qwen2_moe", "deepseek"}) {
    configs.push_back(Fixture(std::string("hf_configs/") + name + ".json"));
  }
  configs.push_back(Fixture("tiny_llama/safetensors/config.json"));
  return configs;
}

FuzzTarget JsonLiteTarget() {
  FuzzTarget t;
  t.name = "json_lite";
  t.seeds = HfConfigs();
  for (const char* name :
       {"safetensors/sharded/model.safetensors.index.json", "tiny_llama/tokenizer/tokenizer.json",
        "tiny_llama/tokenizer/tokenizer_config.json", "hf_tokenizer/smollm2/generation_config.json",
        "hf_tokenizer/smollm2/tokenizer_config.json"}) {
    t.seeds.push_back(Fixture(name));
  }
  t.dictionary = kJsonTokens;
  t.text = true;
  t.iterations = 150000;
  t.run = [](const std::string& input) -> absl::Status {
    absl::StatusOr<json_lite::Value> value = json_lite::Parse(input);
    if (!value.ok()) return value.status();
    (void)json_lite::TypeName(*value);
    (void)value->Find("model");
    return absl::OkStatus();
  };
  return t;
}

FuzzTarget HfConfigTarget() {
  FuzzTarget t;
  t.name = "hf_config";
  t.seeds = HfConfigs();
  t.dictionary = WithJsonTokens(
      {"\"rope_scaling\"", "\"num_local_experts\"", "\"num_experts_per_tok\"", "\"model_type\"",
       "\"hidden_size\"", "\"num_attention_heads\"", "\"num_key_value_heads\"", "\"head_dim\"",
       "\"rope_type\"", "\"llama3\"", "\"linear\"", "\"dynamic\"", "\"mixtral\"", "\"factor\"",
       "\"tie_word_embeddings\"", "\"eos_token_id\"", "\"torch_dtype\"", "0.0", "-1"});
  t.text = true;
  t.iterations = 120000;
  t.run = [](const std::string& input) -> absl::Status {
    return ModelConfigFromHfConfigText(input, "fuzz/config.json").status();
  };
  return t;
}

FuzzTarget ChatRequestTarget() {
  FuzzTarget t;
  t.name = "chat_request";
  t.seeds = {R"({"messages": [{"role": "user", "content": "hi"}]})",
             R"({"model": "smol", "messages": [{"role": "system", "content": "Be brief."},
          {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text",
          "text": "b"}]}, {"role": "assistant", "content": "ok"}], "max_tokens": 7,
          "max_completion_tokens": 9, "temperature": 0.5, "top_p": 0.9, "top_k": 40,
          "seed": -3, "ignore_eos": true, "stream": true,
          "stream_options": {"include_usage": true}, "n": 1, "stop": null,
          "response_format": {"type": "text"}, "user": "u", "logprobs": false})",
             R"({"model": null, "messages": [{"role": "developer", "content": "x"},
          {"role": "user", "content": "\u00e9\ud83d\ude00"}], "temperature": null,
          "seed": 18446744073709551615, "tools": null, "stop": []})"};
  t.dictionary = WithJsonTokens({"\"messages\"", "\"role\"",       "\"content\"",
                                 "\"user\"",     "\"assistant\"",  "\"system\"",
                                 "\"tool\"",     "\"max_tokens\"", "\"temperature\"",
                                 "\"top_p\"",    "\"seed\"",       "\"stream\"",
                                 "\"stop\"",     "\"n\"",          "\"logit_bias\"",
                                 "\"text\"",     "\"type\"",       "\"image_url\"",
                                 "NaN",          "Infinity"});
  t.text = true;
  t.iterations = 150000;
  t.run = [](const std::string& input) -> absl::Status {
    absl::StatusOr<nlohmann::json> body = proto::ParseJson(input);
    if (!body.ok()) return body.status();
    (void)proto::DumpJson(*body);
    (void)proto::DescribeJsonValue(*body);
    return proto::ParseChatCompletionRequest(*body).status();
  };
  return t;
}

// ---- Hugging Face tokenizer directories ------------------------------------------------

// tokenizer.json seeds: the tiny Llama's, one with merges (as "a b" strings and as pairs)
// and added tokens, and the Llama 3 / Qwen2 pre-tokenizers of smollm2_variants.json.
std::vector<std::string> TokenizerJsonSeeds() {
  const std::string tiny = Fixture("tiny_llama/tokenizer/tokenizer.json");
  std::vector<std::string> seeds = {tiny};
  Json base = Json::parse(tiny);
  Json& vocab = base["model"]["vocab"];
  const int32_t n = static_cast<int32_t>(vocab.size());
  vocab["\xc4\xa0t"] = n;
  vocab["he"] = n + 1;
  vocab["\xc4\xa0the"] = n + 2;
  base["added_tokens"] = Json::array();
  int32_t id = n + 3;
  for (const char* special : {"<|endoftext|>", "<|im_start|>", "<|im_end|>"}) {
    base["added_tokens"].push_back({{"id", id++},
                                    {"content", special},
                                    {"single_word", false},
                                    {"lstrip", false},
                                    {"rstrip", false},
                                    {"normalized", false},
                                    {"special", true}});
  }
  base["added_tokens"].push_back({{"id", id++},
                                  {"content", "hello"},
                                  {"single_word", false},
                                  {"lstrip", true},
                                  {"rstrip", false},
                                  {"normalized", true},
                                  {"special", false}});
  Json strings = base;
  strings["model"]["merges"] = {"\xc4\xa0 t", "h e", "\xc4\xa0t he"};
  seeds.push_back(strings.dump());
  Json pairs = base;
  pairs["model"]["merges"] = Json::array(
      {Json::array({"\xc4\xa0", "t"}), Json::array({"h", "e"}), Json::array({"\xc4\xa0t", "he"})});
  seeds.push_back(pairs.dump(1));
  const Json variants = Json::parse(Fixture("hf_tokenizer/smollm2_variants.json"));
  for (const auto& [family, variant] : variants.items()) {
    Json v = strings;
    v["pre_tokenizer"] = variant["pre_tokenizer"];
    v["normalizer"] = variant["normalizer"];
    v["model"]["ignore_merges"] = variant["ignore_merges"];
    seeds.push_back(v.dump());
  }
  return seeds;
}

const std::vector<std::string> kTokenizerTokens =
    WithJsonTokens({"\"added_tokens\"", "\"special\"",   "\"content\"",       "\"id\"",
                    "\"merges\"",       "\"vocab\"",     "\"pre_tokenizer\"", "\"Sequence\"",
                    "\"Split\"",        "\"ByteLevel\"", "\"Regex\"",         "\"normalizer\"",
                    "\"NFC\"",          "\"BPE\"",       "\"WordPiece\"",     "\"<|im_end|>\"",
                    "\"bos_token\"",    "\"eos_token\"", "\"add_bos_token\"", "\"chat_template\"",
                    "\\p{L}",           "(?i:",          "\\s+(?!\\S)",       "\"\xc4\xa0\""});

FuzzTarget HfTokenizerTarget() {
  FuzzTarget t;
  t.name = "hf_tokenizer";
  t.seeds = TokenizerJsonSeeds();
  t.dictionary = kTokenizerTokens;
  t.text = true;
  t.iterations = 20000;
  const std::string dir = WorkDir("hf_tokenizer");
  // Special tokens every seed has (the byte tokens of "!" and "\"").
  WriteFile(dir + "/tokenizer_config.json",
            R"({"add_bos_token": false, "bos_token": "!", "eos_token": "\"",)"
            R"( "chat_template": "{{ bos_token }}{{ messages[0]['content'] }}"})");
  WriteFile(dir + "/generation_config.json", R"({"eos_token_id": [33, 34]})");
  t.run = [dir](const std::string& input) -> absl::Status {
    WriteFile(dir + "/tokenizer.json", input);
    absl::StatusOr<std::unique_ptr<Tokenizer>> tok = LoadHfTokenizer(dir);
    if (!tok.ok()) return tok.status();
    ExerciseTokenizer(**tok);
    return absl::OkStatus();
  };
  return t;
}

// tokenizer_config.json (special tokens, BOS, chat template) beside a valid tokenizer.json.
FuzzTarget HfTokenizerConfigTarget() {
  FuzzTarget t;
  t.name = "hf_tokenizer_config";
  t.seeds = {Fixture("tiny_llama/tokenizer/tokenizer_config.json"),
             R"({"add_bos_token": true, "add_eos_token": false, "bos_token": "<|im_start|>",
                 "eos_token": {"content": "<|im_end|>", "special": true}, "unk_token": null,
                 "chat_template": [{"name": "default", "template": "{{ messages }}"},
                                   {"name": "tool_use", "template": "x"}]})"};
  t.dictionary = kTokenizerTokens;
  t.text = true;
  t.iterations = 8000;
  const std::string dir = WorkDir("hf_tokenizer_config");
  WriteFile(dir + "/tokenizer.json", TokenizerJsonSeeds()[1]);
  WriteFile(dir + "/generation_config.json", R"({"bos_token_id": 258, "eos_token_id": 260})");
  t.run = [dir](const std::string& input) -> absl::Status {
    WriteFile(dir + "/tokenizer_config.json", input);
    absl::StatusOr<std::unique_ptr<Tokenizer>> tok = LoadHfTokenizer(dir);
    if (!tok.ok()) return tok.status();
    ExerciseTokenizer(**tok);
    absl::StatusOr<std::string> source = LoadHfChatTemplate(dir);
    if (source.ok()) ExerciseChatTemplate(*source);
    return absl::OkStatus();
  };
  return t;
}

// SentencePiece tokenizer.model (a protobuf), read as transformers and as the
// sentencepiece library would.
FuzzTarget SentencePieceTarget() {
  FuzzTarget t;
  t.name = "sentencepiece";
  t.seeds = {Fixture("tiny_spm/tokenizer.model")};
  // Protobuf keys of ModelProto's pieces, trainer and normalizer specs; varints.
  t.dictionary = {"\x0a",
                  "\x12",
                  "\x1a",
                  "\x0d",
                  "\x15",
                  "\x18",
                  "\x20",
                  "\x28",
                  std::string("\x18\x00", 2),
                  "\x18\x01",
                  "\x18\x02",
                  "\x18\x03",
                  "\x18\x04",
                  "\x18\x06",
                  "\xff\xff\xff\xff\x0f",
                  "\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01",
                  "<0x0A>",
                  "\xe2\x96\x81",
                  "<unk>",
                  "<s>",
                  "</s>",
                  "identity",
                  "nmt_nfkc"};
  t.iterations = 15000;
  const std::string path = WorkDir("sentencepiece") + "/tokenizer.model";
  t.run = [path](const std::string& input) -> absl::Status {
    WriteFile(path, input);
    absl::Status verdict;
    for (SpmSemantics semantics : {SpmSemantics::kTransformers, SpmSemantics::kSentencePiece}) {
      absl::StatusOr<std::unique_ptr<SpmTokenizer>> tok =
          LoadSentencePieceTokenizer(path, semantics);
      if (tok.ok()) ExerciseTokenizer(**tok);
      if (semantics == SpmSemantics::kTransformers) verdict = tok.status();
    }
    return verdict;
  };
  return t;
}

// ---- Jinja chat templates -------------------------------------------------------------

FuzzTarget JinjaTarget() {
  const Json cases = Json::parse(Fixture("chat_template_cases.json"));
  FuzzTarget t;
  t.name = "jinja";
  // Variables: every name a fixture snippet or tool-template case renders with (the first
  // value seen wins), so mutated templates find the data their seeds used.
  Json variables = Json::object();
  auto merge = [&variables](const Json& vars) {
    for (const auto& [key, value] : vars.items()) {
      if (!variables.contains(key)) variables[key] = value;
    }
  };
  for (const auto& [name, source] : cases["templates"].items()) t.seeds.push_back(source);
  for (const auto& [name, source] : cases["template_cases"]["templates"].items()) {
    t.seeds.push_back(source);
  }
  for (const Json& c : cases["template_cases"]["cases"]) merge(c["variables"]);
  for (const Json& c : cases["snippets"]) {
    merge(c["variables"]);
    (c.contains("syntax_error") ? t.extra_corpus : t.seeds).push_back(c["template"]);
  }
  variables["messages"] = cases["conversations"]["system_multi_turn"];
  variables["add_generation_prompt"] = true;
  const std::filesystem::path more = testing::SourcePath("tests/fixtures/chat_templates");
  if (std::filesystem::is_directory(more)) {
    for (const auto& entry : std::filesystem::directory_iterator(more)) {
      if (entry.path().extension() == ".jinja") t.extra_corpus.push_back(ReadFile(entry.path()));
    }
  }
  t.dictionary = {"{{",
                  "}}",
                  "{%",
                  "%}",
                  "{#",
                  "#}",
                  "{%-",
                  "-%}",
                  "{{-",
                  "-}}",
                  " for x in ",
                  "endfor",
                  " if ",
                  "endif",
                  "else",
                  "elif",
                  "set ",
                  "macro m(a, b=1)",
                  "endmacro",
                  "call",
                  "endcall",
                  "filter upper",
                  "endfilter",
                  "namespace(",
                  "loop.index",
                  "loop.cycle(",
                  "|tojson",
                  "|tojson(indent=2)",
                  "|length",
                  "|items",
                  "|dictsort",
                  "|map(attribute='x')",
                  "|selectattr('a')",
                  "|join",
                  "|trim",
                  "|replace(",
                  "|format(",
                  "|default(",
                  "|int",
                  "|float",
                  "|round",
                  "|batch(",
                  "|slice(",
                  "|unique",
                  "|sum",
                  "|first",
                  "|last",
                  "|reverse",
                  "|string",
                  "range(",
                  "raise_exception(",
                  "strftime_now(",
                  " is defined",
                  " is none",
                  " in ",
                  " not ",
                  " and ",
                  " or ",
                  "[::-1]",
                  "[1:]",
                  "[-1]",
                  ".split(",
                  ".startswith(",
                  ".strip(",
                  ".items()",
                  ".get(",
                  " ~ ",
                  " ** ",
                  " // ",
                  " % ",
                  "%s",
                  "%d",
                  "%(a)s",
                  "None",
                  "true",
                  "'",
                  "\"",
                  "(",
                  ")",
                  "[",
                  "]",
                  ".",
                  ",",
                  "messages",
                  "message['content']",
                  "tools",
                  "break",
                  "continue",
                  "recursive",
                  "loop(",
                  "caller()",
                  "self",
                  "varargs",
                  "999999999999999999999",
                  "-9223372036854775808",
                  "1e308",
                  "\\u",
                  "\\x"};
  t.text = true;
  t.iterations = 50000;
  const jinja::Value vars = testing::JinjaValueFromJson(variables);
  t.run = [vars](const std::string& input) -> absl::Status {
    absl::StatusOr<jinja::Template> tmpl = jinja::Template::Parse(input);
    if (!tmpl.ok()) return tmpl.status();
    (void)tmpl->Render(vars);
    (void)tmpl->Render(jinja::Value());
    ExerciseChatTemplate(input);
    return absl::OkStatus();
  };
  return t;
}

// ---- The targets ------------------------------------------------------------------------

struct TargetEntry {
  const char* name;
  FuzzTarget (*make)();
};

// One line per parser: a new parser of untrusted input gets a FuzzTarget function above
// (seeds, format tokens, a run that feeds it one input) and an entry here.
const TargetEntry kTargets[] = {
    {"gguf", GgufTarget},
    {"gguf_tokenizer", GgufTokenizerTarget},
    {"safetensors", SafetensorsTarget},
    {"safetensors_index", SafetensorsIndexTarget},
    {"zip", ZipTarget},
    {"pickle", PickleTarget},
    {"torch_bin", TorchBinTarget},
    {"torch_bin_index", TorchBinIndexTarget},
    {"json_lite", JsonLiteTarget},
    {"hf_config", HfConfigTarget},
    {"hf_tokenizer", HfTokenizerTarget},
    {"hf_tokenizer_config", HfTokenizerConfigTarget},
    {"jinja", JinjaTarget},
    {"chat_request", ChatRequestTarget},
    {"sentencepiece", SentencePieceTarget},
};

class FuzzParsersTest : public ::testing::TestWithParam<TargetEntry> {};

TEST_P(FuzzParsersTest, ParsesOrFailsCleanly) {
  const FuzzTarget target = GetParam().make();
  ASSERT_EQ(target.name, GetParam().name);
  RunFuzzTarget(target);
}

INSTANTIATE_TEST_SUITE_P(Parsers, FuzzParsersTest, ::testing::ValuesIn(kTargets),
                         [](const ::testing::TestParamInfo<TargetEntry>& info) {
                           return std::string(info.param.name);
                         });

}  // namespace
}  // namespace moeserve::fuzz
