// Rule-based answer checking (docs/decisions.md "Answer checking", docs/algorithms.md §J and §C.3): the answer a
// response states is the content of its last brace-matched \boxed{...}, else its last number; two
// answers are equal when both read as numbers within a relative 1e-4 (math_grader's isclose), else
// when their normalised strings are equal. Numbers may carry a sign, thousands separators
// ("1,234"), decimals, a trailing '%', and be fractions ("3/4", "\frac{3}{4}", "\dfrac34" is not
// read). Local and deterministic; an LLM judge is a separate, optional stage.
#pragma once
#include <optional>
#include <string>
#include <string_view>

namespace ts {

// The stated answer, stripped of surrounding white space and '$'; nullopt when there is neither a
// \boxed{} nor a number.
std::optional<std::string> extract_answer(std::string_view response);

// The value of an answer string when it reads as one number (see above), else nullopt.
std::optional<double> answer_number(std::string_view answer);

// True when `predicted` (as extract_answer returns it) matches `reference`.
bool answers_equal(std::string_view predicted, std::string_view reference);

}  // namespace ts
