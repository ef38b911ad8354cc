// Planted-truth reasoning world: the phrasing templates of the six behaviours (docs/algorithms.md §A.3) and the
// sentence labeller that matches them. The corpus generator (toy/corpus.h) writes every labelled
// sentence from one of these phrasings; the evaluator (toy/evaluate.h) and the toy annotator
// (annotate/toy_annotator.h) label a sentence by the phrasing it instantiates, which is exact on the
// corpus (tests/toy/test_toy_evaluate.cpp).
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace ts {

// The six behaviour labels, in the order of docs/algorithms.md §A.3.
const std::vector<std::string>& toy_behaviour_labels();

// The phrasings of one behaviour (placeholders in braces: {w} {W} {e} {r} {x} {c} {g} {f}); for the
// sentence labeller, tests and documentation. Unknown label: empty.
const std::vector<std::string>& toy_phrasings(const std::string& label);

// The lists the generator draws from. Placeholders: {w} what, {W} What, {e} expression, {r} value,
// {x} wrong value, {c} check expression, {g} goal, {f} fact, {n} final answer. No phrasing contains a
// sentence break of docs/algorithms.md §B.3 except its final '.', '?' or '!'. "initializing" is restate and
// plan together; the final answer line has no label. A new phrasing must keep the labeller exact on
// the corpus (test_toy_evaluate) and have at least 3 words (shorter fragments are not sentences, §B.3).
// backtrack_echo and test_echo: the arithmetic-free echoes of ToyCorpusOptions::plain_echoes, labelled as backtrack and test.
// backtrack_plain: the arithmetic-free corrections of ToyCorpusOptions::plain_backtracking, labelled as backtrack.
// recheck: the arithmetic-free rechecks of ToyCorpusOptions::rechecks (a right step redone), labelled as backtrack.
enum class ToyPhrasingList { restate, plan, deduce, knowledge, test, uncertain, backtrack, final_answer, backtrack_echo, test_echo, backtrack_plain, recheck };
const std::vector<std::string>& toy_phrasing_list(ToyPhrasingList list);

// The behaviour label of one sentence: the first label, in the priority order backtracking,
// example-testing, uncertainty-estimation, adding-knowledge, initializing, deduction (the most
// specific templates first: a lazy wildcard lets a generic deduction template match almost any
// sentence with " is " and " = "), one of whose phrasings (toy_phrasings) matches the whole sentence,
// every placeholder standing for one or more characters. "unlabelled" when none matches.
std::string toy_label_sentence(std::string_view sentence);

}  // namespace ts
