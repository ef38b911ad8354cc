// The toy world's phrasing templates and the sentence labeller (phrasings.h).
#include "toy/phrasings.h"

#include <initializer_list>
#include <map>
#include <stdexcept>

#include "tokenizer/regex.h"

namespace ts {

const std::vector<std::string>& toy_phrasing_list(ToyPhrasingList list) {
  static const std::vector<std::string> kRestate = {
      "Okay, so I need to find {g}.", "Let me restate the problem, we want to know {g}.", "The question asks {g}.",
      "Alright, the goal is to work out {g}.", "First, I need to understand what is asked, which is {g}.",
      "So we want to know {g}.", "Let's see, the task is to figure out {g}.",
      "I should start by identifying what we need, namely {g}.", "Okay, let me figure out {g}."};
  static const std::vector<std::string> kPlan = {
      "I'll go through it step by step.", "Let me break this into steps.", "The plan is to compute each quantity in turn.",
      "I should handle one operation at a time.", "First I'll set up the calculation.", "Let me organize the numbers before computing.",
      "I'll start with the first quantity and build up.", "A careful step-by-step approach should work here."};
  static const std::vector<std::string> kDeduce = {
      "{W} is {e} = {r}.", "So {w} is {e}, which gives {r}.", "Computing {w}, {e} = {r}.", "That means {w} comes to {e} = {r}.",
      "{e} = {r}, so {w} is {r}.", "Next, {w} is {e} = {r}.", "Then {w} equals {r}, since {e} = {r}.",
      "Now I compute {w}, which is {e} = {r}.", "Working it out, {w} is {e}, that is {r}."};
  static const std::vector<std::string> kKnowledge = {
      "I remember that {f}.", "Recall that {f}.", "It helps to know that {f}.", "A useful fact here is that {f}.", "Note that {f}.",
      "From basic arithmetic, {f}.", "It's worth remembering that {f}.", "As a general rule, {f}.", "I know that {f}."};
  static const std::vector<std::string> kTest = {
      "Let me check this, {c}, which matches.", "To double-check, {c}, so {w} is {r}.", "Checking by working backwards, {c}, as expected.",
      "Let me verify with the reverse operation, {c}.", "If {w} is {r}, then {c}, which is consistent.",
      "Testing the result, {c}, so it holds.", "As a quick check, {c}, good.", "Plugging the value back in, {c}, which confirms it.",
      "Let me test it another way, {c}, so the step is right."};
  static const std::vector<std::string> kUncertain = {
      "Hmm, I'm not sure this is right.", "I'm not completely certain about this step.",
      "Maybe I'm misreading the problem, but this seems plausible.", "I think this is correct, but I'm not fully confident.",
      "This might be wrong, so I should be careful.", "Does this really make sense?",
      "I'm a little unsure whether I set this up correctly.", "Something about this feels off, though I can't say what.",
      "Perhaps I'm overlooking something here."};
  static const std::vector<std::string> kBacktrack = {
      "Wait, that's wrong, {e} is {r}, not {x}.", "Hold on, I made a mistake, since {e} is actually {r}, not {x}.",
      "No, wait, {e} = {r}, so {x} was wrong.", "Actually, let me redo that, {e} = {r}, not {x}.",
      "Oops, {x} is not right, because {e} gives {r}.", "Let me go back, {e} equals {r} rather than {x}.",
      "Hmm, wait, I miscalculated and {e} is {r}, not {x}.", "That's not right, {x} should be {r} since {e} = {r}.",
      "Scratch that, {x} is wrong and {w} is really {e} = {r}."};
  static const std::vector<std::string> kBacktrackEcho = {
      "That was wrong of me, I went too fast.", "Oops, that was a careless slip.", "I made a mistake there, so I must slow down.",
      "I miscalculated because I rushed that step.", "Hold on, I should watch out for errors like that.",
      "I messed up the carry, so I will go slower.", "It's wrong to rush like that, so let me slow down.",
      "Wait, I keep slipping on carries, so I must slow down.", "Good thing I caught that, it was wrong."};
  static const std::vector<std::string> kBacktrackPlain = {
      "Wait, that's wrong.", "Hold on, I made a mistake.", "No, wait, that is not right.", "Actually, let me redo that.",
      "Oops, that value is off.", "Hmm, wait, I miscalculated.", "That's not right, let me fix it.", "Scratch that last step.",
      "Wait, I dropped something there."};
  static const std::vector<std::string> kRecheck = {
      "Wait, let me check that step again.", "Hold on, let me redo that calculation.", "Hmm, wait, let me recompute that.",
      "Let me go back and redo that step.", "Wait, I should recompute that value.", "Actually, let me work that out again.",
      "Hold on, I want to redo that step.", "Wait, let me go over that again.", "Let me step back and recompute that."};
  static const std::vector<std::string> kTestEcho = {
      "Checking each result like this is worth the time.", "Verifying it makes me confident in the step.",
      "Good, that confirms the value.", "It pays to verify every result this way.",
      "Testing the value backwards was a good idea.", "Working backwards agrees, so I trust it.",
      "Verifying like this catches errors early.", "So it checks out, good.", "Double-checking like this keeps the work reliable."};
  static const std::vector<std::string> kFinal = {
      "The answer is \\boxed{{n}}.", "So the final answer is \\boxed{{n}}.", "Therefore, the answer is \\boxed{{n}}.",
      "Final answer: \\boxed{{n}}.", "Thus, the result is \\boxed{{n}}.", "**Answer:** \\boxed{{n}}."};
  switch (list) {
    case ToyPhrasingList::restate: return kRestate;
    case ToyPhrasingList::plan: return kPlan;
    case ToyPhrasingList::deduce: return kDeduce;
    case ToyPhrasingList::knowledge: return kKnowledge;
    case ToyPhrasingList::test: return kTest;
    case ToyPhrasingList::uncertain: return kUncertain;
    case ToyPhrasingList::backtrack: return kBacktrack;
    case ToyPhrasingList::final_answer: return kFinal;
    case ToyPhrasingList::backtrack_echo: return kBacktrackEcho;
    case ToyPhrasingList::test_echo: return kTestEcho;
    case ToyPhrasingList::backtrack_plain: return kBacktrackPlain;
    case ToyPhrasingList::recheck: return kRecheck;
  }
  throw std::invalid_argument("toy_phrasing_list: not a ToyPhrasingList");
}

const std::vector<std::string>& toy_behaviour_labels() {
  static const std::vector<std::string> l = {"initializing",   "deduction", "adding-knowledge", "example-testing",
                                             "uncertainty-estimation", "backtracking"};
  return l;
}

const std::vector<std::string>& toy_phrasings(const std::string& label) {
  static const std::map<std::string, std::vector<std::string>> m = [] {
    using enum ToyPhrasingList;
    const auto with = [](std::initializer_list<ToyPhrasingList> lists) {
      std::vector<std::string> v;
      for (ToyPhrasingList l : lists) v.insert(v.end(), toy_phrasing_list(l).begin(), toy_phrasing_list(l).end());
      return v;
    };
    return std::map<std::string, std::vector<std::string>>{{"initializing", with({restate, plan})},
                                                           {"deduction", toy_phrasing_list(deduce)},
                                                           {"adding-knowledge", toy_phrasing_list(knowledge)},
                                                           {"example-testing", with({test, test_echo})},
                                                           {"uncertainty-estimation", toy_phrasing_list(uncertain)},
                                                           {"backtracking", with({backtrack, backtrack_echo, backtrack_plain, recheck})}};
  }();
  static const std::vector<std::string> none;
  auto it = m.find(label);
  return it == m.end() ? none : it->second;
}

namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_ascii_letter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

// The labelling patterns, most specific label first (see toy_label_sentence).
struct LabelPattern {
  std::string label;
  Regex regex;
};

// A phrasing as an anchored regex: literal text escaped, each {x} placeholder a lazy wildcard.
std::string phrasing_pattern(const std::string& phrasing) {
  std::string re;
  for (size_t i = 0; i < phrasing.size(); ++i) {
    const char c = phrasing[i];
    if (c == '{' && i + 2 < phrasing.size() && phrasing[i + 2] == '}' && std::string_view("wWerxcgfn").find(phrasing[i + 1]) != std::string_view::npos) {
      re += ".+?";
      i += 2;
      continue;
    }
    if (static_cast<unsigned char>(c) < 0x80 && !is_ascii_letter(c) && !is_digit(c)) re += '\\';
    re += c;
  }
  return re + "\\z";
}

const std::vector<LabelPattern>& label_patterns() {
  static const std::vector<LabelPattern> patterns = [] {
    std::vector<LabelPattern> out;
    for (const char* label : {"backtracking", "example-testing", "uncertainty-estimation", "adding-knowledge", "initializing", "deduction"})
      for (const std::string& phrasing : toy_phrasings(label)) out.push_back({label, Regex(phrasing_pattern(phrasing), "toy/phrasings.cpp", label)});
    return out;
  }();
  return patterns;
}

}  // namespace

std::string toy_label_sentence(std::string_view sentence) {
  size_t end = 0;
  for (const LabelPattern& p : label_patterns())
    if (p.regex.matches_prefix(sentence, end) && end == sentence.size()) return p.label;
  return "unlabelled";
}

}  // namespace ts
