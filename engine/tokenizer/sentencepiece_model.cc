#include "engine/tokenizer/sentencepiece_model.h"

#include <cstring>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/status/status.h"
#include "common/absl_strings.h"
#include "common/status.h"

namespace moeserve {
namespace {

// Protobuf wire types.
constexpr uint32_t kVarint = 0;
constexpr uint32_t kFixed64 = 1;
constexpr uint32_t kLengthDelimited = 2;
constexpr uint32_t kFixed32 = 5;

// Reads one message's fields. Every read is bounds-checked; errors name the file and the
// byte offset in it.
class WireReader {
 public:
  WireReader(std::string_view data, size_t base, std::string_view path, std::string_view what)
      : data_(data), base_(base), path_(path), what_(what) {}

  bool done() const { return pos_ >= data_.size(); }

  absl::Status NextField(uint32_t* field, uint32_t* wire_type) {
    uint64_t key = 0;
    MOESERVE_RETURN_IF_ERROR(ReadVarint(&key));
    *field = static_cast<uint32_t>(key >> 3);
    *wire_type = static_cast<uint32_t>(key & 7);
    if (*field == 0 || key >> 3 > 0x1FFFFFFF) return Error("bad field number");
    return absl::OkStatus();
  }

  absl::Status ReadVarint(uint64_t* value) {
    *value = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ >= data_.size()) return Error("truncated varint");
      const auto byte = static_cast<uint8_t>(data_[pos_++]);
      *value |= static_cast<uint64_t>(byte & 0x7F) << shift;
      if ((byte & 0x80) == 0) return absl::OkStatus();
    }
    return Error("varint longer than 10 bytes");
  }

  absl::Status ReadFixed32(uint32_t* value) {
    if (data_.size() - pos_ < 4) return Error("truncated fixed32");
    uint32_t v = 0;
    for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(data_[pos_ + i]);
    pos_ += 4;
    *value = v;
    return absl::OkStatus();
  }

  // A length-delimited payload; *offset receives its position in the file.
  absl::Status ReadBytes(std::string_view* bytes, size_t* offset) {
    uint64_t length = 0;
    MOESERVE_RETURN_IF_ERROR(ReadVarint(&length));
    if (length > data_.size() - pos_) {
      return Error(
          Cat("length ", length, " runs past the end (", data_.size() - pos_, " bytes left)"));
    }
    *offset = base_ + pos_;
    *bytes = data_.substr(pos_, length);
    pos_ += length;
    return absl::OkStatus();
  }

  absl::Status Skip(uint32_t wire_type) {
    switch (wire_type) {
      case kVarint: {
        uint64_t ignored;
        return ReadVarint(&ignored);
      }
      case kFixed64:
        if (data_.size() - pos_ < 8) return Error("truncated fixed64");
        pos_ += 8;
        return absl::OkStatus();
      case kLengthDelimited: {
        std::string_view ignored;
        size_t offset;
        return ReadBytes(&ignored, &offset);
      }
      case kFixed32: {
        uint32_t ignored;
        return ReadFixed32(&ignored);
      }
      default:
        return Error(Cat("unsupported wire type ", wire_type));
    }
  }

  // Checks that a known field has the wire type its declaration implies.
  absl::Status Expect(uint32_t field, uint32_t wire_type, uint32_t want) {
    if (wire_type == want) return absl::OkStatus();
    return Error(Cat("field ", field, " has wire type ", wire_type, ", expected ", want));
  }

  absl::Status Error(std::string_view message) const {
    return absl::InvalidArgumentError(Cat(path_, ": malformed SentencePiece model (", what_,
                                          " at byte ", base_ + pos_, "): ", message));
  }

 private:
  std::string_view data_;
  size_t pos_ = 0;
  size_t base_;  // offset of data_ in the file
  std::string_view path_;
  std::string_view what_;
};

absl::Status ReadInt32(WireReader& r, uint32_t field, uint32_t wire_type, int32_t* out) {
  MOESERVE_RETURN_IF_ERROR(r.Expect(field, wire_type, kVarint));
  uint64_t v = 0;
  MOESERVE_RETURN_IF_ERROR(r.ReadVarint(&v));
  *out = static_cast<int32_t>(static_cast<uint32_t>(v));  // int32 is sign-extended on the wire
  return absl::OkStatus();
}

absl::Status ReadBool(WireReader& r, uint32_t field, uint32_t wire_type, bool* out) {
  MOESERVE_RETURN_IF_ERROR(r.Expect(field, wire_type, kVarint));
  uint64_t v = 0;
  MOESERVE_RETURN_IF_ERROR(r.ReadVarint(&v));
  *out = v != 0;
  return absl::OkStatus();
}

absl::Status ParsePiece(std::string_view bytes, size_t base, std::string_view path,
                        SentencePieceModel::Piece* piece) {
  WireReader r(bytes, base, path, "pieces");
  while (!r.done()) {
    uint32_t field = 0;
    uint32_t wire_type = 0;
    MOESERVE_RETURN_IF_ERROR(r.NextField(&field, &wire_type));
    if (field == 1) {
      MOESERVE_RETURN_IF_ERROR(r.Expect(field, wire_type, kLengthDelimited));
      std::string_view text;
      size_t offset;
      MOESERVE_RETURN_IF_ERROR(r.ReadBytes(&text, &offset));
      piece->piece = std::string(text);
    } else if (field == 2) {
      MOESERVE_RETURN_IF_ERROR(r.Expect(field, wire_type, kFixed32));
      uint32_t bits = 0;
      MOESERVE_RETURN_IF_ERROR(r.ReadFixed32(&bits));
      std::memcpy(&piece->score, &bits, sizeof(bits));
    } else if (field == 3) {
      MOESERVE_RETURN_IF_ERROR(ReadInt32(r, field, wire_type, &piece->type));
    } else {
      MOESERVE_RETURN_IF_ERROR(r.Skip(wire_type));
    }
  }
  return absl::OkStatus();
}

absl::Status ParseTrainerSpec(std::string_view bytes, size_t base, std::string_view path,
                              SentencePieceModel* model) {
  WireReader r(bytes, base, path, "trainer_spec");
  while (!r.done()) {
    uint32_t field = 0;
    uint32_t wire_type = 0;
    MOESERVE_RETURN_IF_ERROR(r.NextField(&field, &wire_type));
    switch (field) {
      case 3:
        MOESERVE_RETURN_IF_ERROR(ReadInt32(r, field, wire_type, &model->model_type));
        break;
      case 24:
        MOESERVE_RETURN_IF_ERROR(ReadBool(r, field, wire_type, &model->treat_whitespace_as_suffix));
        break;
      case 35:
        MOESERVE_RETURN_IF_ERROR(ReadBool(r, field, wire_type, &model->byte_fallback));
        break;
      case 40:
        MOESERVE_RETURN_IF_ERROR(ReadInt32(r, field, wire_type, &model->unk_id));
        break;
      case 41:
        MOESERVE_RETURN_IF_ERROR(ReadInt32(r, field, wire_type, &model->bos_id));
        break;
      case 42:
        MOESERVE_RETURN_IF_ERROR(ReadInt32(r, field, wire_type, &model->eos_id));
        break;
      case 43:
        MOESERVE_RETURN_IF_ERROR(ReadInt32(r, field, wire_type, &model->pad_id));
        break;
      default:
        MOESERVE_RETURN_IF_ERROR(r.Skip(wire_type));
    }
  }
  return absl::OkStatus();
}

absl::Status ParseNormalizerSpec(std::string_view bytes, size_t base, std::string_view path,
                                 SentencePieceModel* model) {
  WireReader r(bytes, base, path, "normalizer_spec");
  while (!r.done()) {
    uint32_t field = 0;
    uint32_t wire_type = 0;
    MOESERVE_RETURN_IF_ERROR(r.NextField(&field, &wire_type));
    std::string_view text;
    size_t offset;
    switch (field) {
      case 1:
        MOESERVE_RETURN_IF_ERROR(r.Expect(field, wire_type, kLengthDelimited));
        MOESERVE_RETURN_IF_ERROR(r.ReadBytes(&text, &offset));
        model->normalizer_name = std::string(text);
        break;
      case 2:
        MOESERVE_RETURN_IF_ERROR(r.Expect(field, wire_type, kLengthDelimited));
        MOESERVE_RETURN_IF_ERROR(r.ReadBytes(&text, &offset));
        model->has_precompiled_charsmap = !text.empty();
        break;
      case 3:
        MOESERVE_RETURN_IF_ERROR(ReadBool(r, field, wire_type, &model->add_dummy_prefix));
        break;
      case 4:
        MOESERVE_RETURN_IF_ERROR(ReadBool(r, field, wire_type, &model->remove_extra_whitespaces));
        break;
      case 5:
        MOESERVE_RETURN_IF_ERROR(ReadBool(r, field, wire_type, &model->escape_whitespaces));
        break;
      case 6:
        MOESERVE_RETURN_IF_ERROR(r.Expect(field, wire_type, kLengthDelimited));
        MOESERVE_RETURN_IF_ERROR(r.ReadBytes(&text, &offset));
        model->has_normalization_rules = !text.empty();
        break;
      default:
        MOESERVE_RETURN_IF_ERROR(r.Skip(wire_type));
    }
  }
  return absl::OkStatus();
}

// Whether a denormalizer_spec changes anything: a charsmap or rules.
absl::StatusOr<bool> DenormalizerIsActive(std::string_view bytes, size_t base,
                                          std::string_view path) {
  SentencePieceModel scratch;
  MOESERVE_RETURN_IF_ERROR(ParseNormalizerSpec(bytes, base, path, &scratch));
  return scratch.has_precompiled_charsmap || scratch.has_normalization_rules;
}

absl::Status Unsupported(std::string_view path, std::string_view what) {
  return absl::UnimplementedError(Cat(path, ": SentencePiece model ", what,
                                      " is not supported (supported: BPE with the identity "
                                      "normalizer, as Llama 2 and Mistral use)"));
}

}  // namespace

absl::StatusOr<SentencePieceModel> ParseSentencePieceModel(std::string_view bytes,
                                                           std::string_view path) {
  SentencePieceModel model;
  bool has_trainer_spec = false;
  WireReader r(bytes, 0, path, "ModelProto");
  while (!r.done()) {
    uint32_t field = 0;
    uint32_t wire_type = 0;
    MOESERVE_RETURN_IF_ERROR(r.NextField(&field, &wire_type));
    if (field < 1 || field > 5 || field == 4) {
      MOESERVE_RETURN_IF_ERROR(r.Skip(wire_type));  // self_test_data and extensions
      continue;
    }
    MOESERVE_RETURN_IF_ERROR(r.Expect(field, wire_type, kLengthDelimited));
    std::string_view message;
    size_t offset = 0;
    MOESERVE_RETURN_IF_ERROR(r.ReadBytes(&message, &offset));
    if (field == 1) {
      SentencePieceModel::Piece piece;
      MOESERVE_RETURN_IF_ERROR(ParsePiece(message, offset, path, &piece));
      model.pieces.push_back(std::move(piece));
    } else if (field == 2) {
      has_trainer_spec = true;
      MOESERVE_RETURN_IF_ERROR(ParseTrainerSpec(message, offset, path, &model));
    } else if (field == 3) {
      MOESERVE_RETURN_IF_ERROR(ParseNormalizerSpec(message, offset, path, &model));
    } else {
      MOESERVE_ASSIGN_OR_RETURN(model.has_denormalizer,
                                DenormalizerIsActive(message, offset, path));
    }
  }
  if (model.pieces.empty()) {
    return absl::InvalidArgumentError(Cat(path, ": SentencePiece model has no pieces"));
  }
  if (!has_trainer_spec) {
    return absl::InvalidArgumentError(Cat(path, ": SentencePiece model has no trainer_spec"));
  }
  return model;
}

absl::StatusOr<SpmVocab> SpmVocabFromModel(const SentencePieceModel& model, std::string_view path,
                                           SpmSemantics semantics) {
  if (model.model_type != 2) {
    constexpr const char* kNames[] = {"?", "Unigram", "BPE", "Word", "Char"};
    const char* name =
        model.model_type >= 1 && model.model_type <= 4 ? kNames[model.model_type] : kNames[0];
    return Unsupported(path, Cat("type ", name, " (", model.model_type, ")"));
  }
  if (model.has_precompiled_charsmap || model.has_normalization_rules ||
      (!model.normalizer_name.empty() && model.normalizer_name != "identity")) {
    return Unsupported(path, Cat("normalizer '", model.normalizer_name, "'"));
  }
  if (model.remove_extra_whitespaces) return Unsupported(path, "remove_extra_whitespaces");
  if (!model.escape_whitespaces) return Unsupported(path, "escape_whitespaces = false");
  if (model.treat_whitespace_as_suffix) return Unsupported(path, "treat_whitespace_as_suffix");
  if (model.has_denormalizer) return Unsupported(path, "denormalizer");

  const auto n = static_cast<int64_t>(model.pieces.size());
  SpmVocab vocab;
  vocab.tokens.reserve(n);
  vocab.scores.reserve(n);
  vocab.token_types.reserve(n);
  for (int64_t i = 0; i < n; ++i) {
    const SentencePieceModel::Piece& piece = model.pieces[i];
    if (piece.type < 1 || piece.type > 6) {
      return absl::InvalidArgumentError(
          Cat(path, ": piece ", i, " '", piece.piece, "' has unknown type ", piece.type));
    }
    if (piece.piece.empty()) {
      return absl::InvalidArgumentError(Cat(path, ": piece ", i, " is empty"));
    }
    int32_t type = piece.type;
    // transformers keeps unused pieces as ordinary vocabulary entries.
    if (semantics == SpmSemantics::kTransformers &&
        type == static_cast<int32_t>(TokenType::kUnused)) {
      type = static_cast<int32_t>(TokenType::kNormal);
    }
    vocab.tokens.push_back(piece.piece);
    vocab.scores.push_back(piece.score);
    vocab.token_types.push_back(type);
  }
  const auto id_or_none = [&](int32_t id, std::string_view what) -> absl::StatusOr<int32_t> {
    if (id < 0) return -1;
    if (id >= n) {
      return absl::InvalidArgumentError(
          Cat(path, ": trainer_spec.", what, " ", id, " is outside the ", n, " pieces"));
    }
    return id;
  };
  MOESERVE_ASSIGN_OR_RETURN(vocab.unk_id, id_or_none(model.unk_id, "unk_id"));
  MOESERVE_ASSIGN_OR_RETURN(vocab.bos_id, id_or_none(model.bos_id, "bos_id"));
  MOESERVE_ASSIGN_OR_RETURN(vocab.eos_id, id_or_none(model.eos_id, "eos_id"));
  vocab.add_bos = vocab.bos_id >= 0;
  vocab.byte_fallback = model.byte_fallback;
  vocab.decode_byte_fallback = true;
  vocab.decode_strip_space = model.add_dummy_prefix;
  if (semantics == SpmSemantics::kTransformers) {
    vocab.merge_order = SpmMergeOrder::kPieceId;
    vocab.prefix = model.add_dummy_prefix ? SpmPrefix::kFirst : SpmPrefix::kNever;
  } else {
    vocab.merge_order = SpmMergeOrder::kSentencePiece;
    vocab.prefix = model.add_dummy_prefix ? SpmPrefix::kWholeText : SpmPrefix::kNever;
  }
  return vocab;
}

absl::StatusOr<std::unique_ptr<SpmTokenizer>> LoadSentencePieceTokenizer(const std::string& path,
                                                                         SpmSemantics semantics) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(Cat(path, ": cannot open the file"));
  std::stringstream buffer;
  buffer << in.rdbuf();
  const std::string bytes = std::move(buffer).str();
  MOESERVE_ASSIGN_OR_RETURN(const SentencePieceModel model, ParseSentencePieceModel(bytes, path));
  MOESERVE_ASSIGN_OR_RETURN(SpmVocab vocab, SpmVocabFromModel(model, path, semantics));
  absl::StatusOr<std::unique_ptr<SpmTokenizer>> tokenizer = SpmTokenizer::Create(std::move(vocab));
  if (!tokenizer.ok()) {
    return absl::Status(tokenizer.status().code(),
                        Cat(path, ": tokenizer: ", tokenizer.status().message()));
  }
  return tokenizer;
}

}  // namespace moeserve
