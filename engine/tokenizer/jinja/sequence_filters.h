// Filters over sequences and mappings (first, join, map, select, sort, ...). Internal to
// the builtins: FindFilter() (filters.cc) consults this table after its own.
#ifndef MOESERVE_ENGINE_TOKENIZER_JINJA_SEQUENCE_FILTERS_H_
#define MOESERVE_ENGINE_TOKENIZER_JINJA_SEQUENCE_FILTERS_H_

#include <string_view>

#include "engine/tokenizer/jinja/builtins.h"

namespace moeserve::jinja {

FilterFn FindSequenceFilter(std::string_view name);  // nullptr when not a sequence filter

}  // namespace moeserve::jinja

#endif  // MOESERVE_ENGINE_TOKENIZER_JINJA_SEQUENCE_FILTERS_H_
