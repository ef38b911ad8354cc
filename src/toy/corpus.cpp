// Toy corpus generator: see corpus.h for the format and the meaning of the rates.
#include "toy/corpus.h"

#include "core/splitmix.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <map>
#include <stdexcept>

#include <nlohmann/json.hpp>

namespace ts {
namespace {

// ---------------------------------------------------------------------------------------------
// Deterministic randomness: splitmix64, keyed by (seed, problem index). Integer ranges by modulo
// (the bias for ranges this small is far below anything the corpus statistics could show).

uint64_t mix64(uint64_t z) { return splitmix64(z); }

struct Rng {
  uint64_t state;
  uint64_t next() { return mix64(state += 0x9E3779B97F4A7C15ULL); }
  int64_t range(int64_t lo, int64_t hi) {  // inclusive
    return lo + static_cast<int64_t>(next() % static_cast<uint64_t>(hi - lo + 1));
  }
  double unit() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  bool coin(double p) { return unit() < p; }
  template <class T>
  const T& pick(const std::vector<T>& v) { return v[static_cast<size_t>(range(0, static_cast<int64_t>(v.size()) - 1))]; }
};

uint64_t fnv1a(const std::string& s) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ULL;
  return h;
}

// ---------------------------------------------------------------------------------------------
// Problems: an expression DAG of integer steps.

struct Operand {
  bool ref = false;  // true: the result of step `v`; false: the constant `v`
  int64_t v = 0;
};
Operand C(int64_t v) { return {false, v}; }
Operand R(int64_t i) { return {true, i}; }

struct Step {
  char op;  // + - * /
  Operand l, r;
  std::string what;  // noun phrase for the result ("the cost of the apples")
  std::string fact;  // the recalled fact behind this step: a lowercase clause without final punctuation
};

struct Spec {
  std::string tmpl, question, goal;  // goal: a clause ("how many dollars Mia spends")
  std::vector<Step> steps;
};

struct Person {
  std::string name, he, his;
};
const std::vector<Person>& people() {
  static const std::vector<Person> p = {{"Mia", "she", "her"},   {"Liam", "he", "his"},  {"Noah", "he", "his"},
                                        {"Emma", "she", "her"},  {"Ava", "she", "her"},  {"Lucas", "he", "his"},
                                        {"Zoe", "she", "her"},   {"Omar", "he", "his"},  {"Priya", "she", "her"},
                                        {"Chen", "he", "his"},   {"Sofia", "she", "her"}, {"Mateo", "he", "his"}};
  return p;
}

std::string S(int64_t v) { return std::to_string(v); }
std::string cap(std::string s) {
  if (!s.empty() && s[0] >= 'a' && s[0] <= 'z') s[0] = static_cast<char>(s[0] - 'a' + 'A');
  return s;
}

// Integer division rounds down: exact in every problem as posed; only a propagated base-style slip
// can make it inexact (see corpus.h).
int64_t apply(char op, int64_t a, int64_t b) {
  switch (op) {
    case '+': return a + b;
    case '-': return a - b;
    case '*': return a * b;
    default: return a / b;
  }
}

// --- templates (each supports 1..4 steps) ----------------------------------------------------

Spec shopping(Rng& g, int k) {
  static const std::vector<std::string> items = {"apples", "notebooks", "pens", "oranges", "stickers", "cookies", "pencils", "mangoes"};
  const Person& p = g.pick(people());
  std::string i1 = g.pick(items), i2 = g.pick(items);
  while (i2 == i1) i2 = g.pick(items);
  const int64_t n1 = g.range(2, 9), p1 = g.range(2, 9), n2 = g.range(2, 9), p2 = g.range(2, 9);
  Spec s;
  s.tmpl = "shopping";
  const std::string times = "the cost of several identical items is the number of items times the price of one";
  const std::string change = "the change is the amount paid minus the total cost";
  const std::string buy1 = p.name + " buys " + S(n1) + " " + i1 + " at " + S(p1) + " dollars each";
  const std::string buy2 = S(n2) + " " + i2 + " at " + S(p2) + " dollars each";
  s.steps.push_back({'*', C(n1), C(p1), "the cost of the " + i1, times});
  if (k == 1) {
    s.question = buy1 + ". How many dollars does " + p.he + " spend?";
    s.goal = "how many dollars " + p.name + " spends";
  } else if (k == 2) {
    const int64_t paid = (n1 * p1 / 10 + 1) * 10;
    s.question = buy1 + " and pays with " + S(paid) + " dollars. How much change, in dollars, does " + p.he + " get?";
    s.goal = "how much change " + p.name + " gets";
    s.steps.push_back({'-', C(paid), R(0), "the change", change});
  } else {
    s.steps.push_back({'*', C(n2), C(p2), "the cost of the " + i2, times});
    s.steps.push_back({'+', R(0), R(1), "the total cost", "the costs of separate purchases add up to the total cost"});
    if (k == 3) {
      s.question = buy1 + " and " + buy2 + ". How many dollars does " + p.he + " spend in total?";
      s.goal = "how many dollars " + p.name + " spends in total";
    } else {
      const int64_t paid = ((n1 * p1 + n2 * p2) / 10 + 1) * 10;
      s.question = buy1 + " and " + buy2 + ", and pays with " + S(paid) + " dollars. How much change, in dollars, does " +
                   p.he + " get?";
      s.goal = "how much change " + p.name + " gets";
      s.steps.push_back({'-', C(paid), R(2), "the change", change});
    }
  }
  return s;
}

Spec travel(Rng& g, int k) {
  static const std::vector<std::string> vehicles = {"train", "bus", "car", "truck", "ferry", "van"};
  const std::string veh = g.pick(vehicles);
  const int64_t v = g.range(3, 9) * 10, t = g.range(2, 6), v2 = g.range(3, 9) * 10, t2 = g.range(2, 5), d = g.range(5, 40);
  Spec s;
  s.tmpl = "travel";
  const std::string speed = "distance equals speed multiplied by time";
  const std::string parts = "the distances of consecutive parts of a trip add up";
  const std::string leg1 = "A " + veh + " travels at " + S(v) + " km per hour for " + S(t) + " hours";
  if (k == 1) {
    s.question = leg1 + ". How many km does it travel?";
    s.goal = "how far the " + veh + " travels";
    s.steps.push_back({'*', C(v), C(t), "the distance", speed});
  } else if (k == 2) {
    s.question = leg1 + " and then another " + S(d) + " km. How many km does it travel in total?";
    s.goal = "the total distance the " + veh + " travels";
    s.steps.push_back({'*', C(v), C(t), "the distance of the first part", speed});
    s.steps.push_back({'+', R(0), C(d), "the total distance", parts});
  } else {
    s.steps.push_back({'*', C(v), C(t), "the distance of the first part", speed});
    s.steps.push_back({'*', C(v2), C(t2), "the distance of the second part", speed});
    s.steps.push_back({'+', R(0), R(1), "the total distance", parts});
    const std::string legs = leg1 + ", then at " + S(v2) + " km per hour for " + S(t2) + " hours";
    if (k == 3) {
      s.question = legs + ". How many km does it travel in total?";
      s.goal = "the total distance the " + veh + " travels";
    } else {
      s.question = legs + ". Then it makes the same trip back. How many km does it travel there and back?";
      s.goal = "the distance the " + veh + " covers there and back";
      s.steps.push_back({'*', R(2), C(2), "the distance there and back", "a trip there and back covers the same distance twice"});
    }
  }
  return s;
}

Spec sharing(Rng& g, int k) {
  const Person& p = g.pick(people());
  Spec s;
  s.tmpl = "sharing";
  const std::string share = "sharing equally means dividing the total by the number of people";
  if (k == 1) {
    const int64_t f = g.range(2, 9), q = g.range(2, 12);
    s.question = p.name + " has " + S(f * q) + " candies and shares them equally among " + S(f) +
                 " friends. How many candies does each friend get?";
    s.goal = "how many candies each friend gets";
    s.steps.push_back({'/', C(f * q), C(f), "each friend's share", share});
    return s;
  }
  const int64_t b = g.range(2, 9), c = g.range(2, 12), total = b * c;
  const std::string bags = p.name + " has " + S(b) + " bags with " + S(c) + " candies in each bag";
  s.steps.push_back({'*', C(b), C(c), "the number of candies", "the number of items in equal bags is the number of bags times the items per bag"});
  if (k == 2) {
    std::vector<int64_t> divisors;
    for (int64_t f = 2; f <= 9; ++f)
      if (total % f == 0) divisors.push_back(f);
    const int64_t f = g.pick(divisors);  // never empty: b itself is one
    s.question = bags + " and shares all the candies equally among " + S(f) + " friends. How many candies does each friend get?";
    s.goal = "how many candies each friend gets";
    s.steps.push_back({'/', R(0), C(f), "each friend's share", share});
    return s;
  }
  int64_t f = g.range(2, 9);
  int64_t e = total % f == 0 ? f : total % f;
  if (total - e < f) f = 2, e = total % 2 == 0 ? 2 : 1;
  s.question = bags + ". " + cap(p.he) + " eats " + S(e) + " of them and shares the rest equally among " + S(f) + " friends.";
  s.steps.push_back({'-', R(0), C(e), "the number of candies left", "eating some candies leaves the total minus the ones eaten"});
  s.steps.push_back({'/', R(1), C(f), "each friend's share", share});
  if (k == 3) {
    s.question += " How many candies does each friend get?";
    s.goal = "how many candies each friend gets";
  } else {
    const int64_t extra = g.range(2, 9);
    s.question += " Then each friend also gets " + S(extra) + " candies from a teacher. How many candies does each friend have now?";
    s.goal = "how many candies each friend has in the end";
    s.steps.push_back({'+', R(2), C(extra), "each friend's final number of candies", "candies received are added to the ones already there"});
  }
  return s;
}

Spec ages(Rng& g, int k) {
  const Person& a = g.pick(people());
  const Person* b = &g.pick(people());
  while (b->name == a.name) b = &g.pick(people());
  const Person* c = &g.pick(people());
  while (c->name == a.name || c->name == b->name) c = &g.pick(people());
  const int64_t x = g.range(3, 12), m = g.range(2, 4), d = g.range(2, 10), y = g.range(2, 20);
  const int64_t z = g.range(1, std::min<int64_t>(9, x * m - 1));
  Spec s;
  s.tmpl = "ages";
  const std::string later = "everyone gets older by the same number of years";
  const std::string head = a.name + " is " + S(x) + " years old. ";
  if (k == 1) {
    s.question = head + b->name + " is " + S(y) + " years older than " + a.name + ". How old is " + b->name + "?";
    s.goal = "how old " + b->name + " is";
    s.steps.push_back({'+', C(x), C(y), b->name + "'s age", "being some years older means adding those years to the age"});
    return s;
  }
  s.steps.push_back({'*', C(x), C(m), b->name + "'s age now", "being several times as old means multiplying the age by that number"});
  const std::string times = b->name + " is " + S(m) + " times as old as " + a.name;
  if (k == 2) {
    s.question = head + times + ". How old will " + b->name + " be in " + S(d) + " years?";
    s.goal = "how old " + b->name + " will be in " + S(d) + " years";
    s.steps.push_back({'+', R(0), C(d), b->name + "'s age in " + S(d) + " years", later});
    return s;
  }
  const std::string younger = ", and " + c->name + " is " + S(z) + " years younger than " + b->name;
  s.steps.push_back({'-', R(0), C(z), c->name + "'s age now", "being some years younger means subtracting those years from the age"});
  if (k == 3) {
    s.question = head + times + younger + ". How old will " + c->name + " be in " + S(d) + " years?";
    s.goal = "how old " + c->name + " will be in " + S(d) + " years";
    s.steps.push_back({'+', R(1), C(d), c->name + "'s age in " + S(d) + " years", later});
  } else {
    s.question = head + times + younger + ". What is the sum of their three ages?";
    s.goal = "the sum of the ages of " + a.name + ", " + b->name + " and " + c->name;
    const std::string sum = "a sum of several ages can be built up by adding one age at a time";
    s.steps.push_back({'+', C(x), R(0), "the sum of the ages of " + a.name + " and " + b->name, sum});
    s.steps.push_back({'+', R(2), R(1), "the sum of all three ages", sum});
  }
  return s;
}

Spec areas(Rng& g, int k) {
  static const std::vector<std::string> places = {"garden", "lawn", "room", "playground", "patio", "field"};
  const std::string place = g.pick(places);
  const int64_t w = g.range(2, 12), h = g.range(2, 12), w2 = g.range(2, 9), h2 = g.range(2, 9), c = g.range(2, 9);
  Spec s;
  s.tmpl = "areas";
  const std::string rect = "the area of a rectangle is its length times its width";
  const std::string price = " Covering it costs " + S(c) + " dollars per square metre.";
  if (k <= 2) {
    s.question = "A rectangular " + place + " is " + S(w) + " metres long and " + S(h) + " metres wide.";
    s.steps.push_back({'*', C(w), C(h), "the area of the " + place, rect});
  } else {
    s.question = "A " + place + " is made of two rectangles, one " + S(w) + " by " + S(h) + " metres and one " + S(w2) + " by " +
                 S(h2) + " metres.";
    s.steps.push_back({'*', C(w), C(h), "the area of the first rectangle", rect});
    s.steps.push_back({'*', C(w2), C(h2), "the area of the second rectangle", rect});
    s.steps.push_back({'+', R(0), R(1), "the total area", "the areas of separate pieces add up to the total area"});
  }
  if (k == 1 || k == 3) {
    s.question += " What is its area in square metres?";
    s.goal = "the area of the " + place;
  } else {
    s.question += price + " How many dollars does it cost to cover the whole " + place + "?";
    s.goal = "the cost of covering the " + place;
    s.steps.push_back({'*', R(static_cast<int64_t>(s.steps.size()) - 1), C(c), "the cost of covering it",
                       "the cost of covering an area is the area times the price per square metre"});
  }
  return s;
}

Spec reading(Rng& g, int k) {
  const Person& p = g.pick(people());
  const int64_t pages = g.range(5, 20), days = g.range(2, 6), weeks = g.range(2, 4);
  Spec s;
  s.tmpl = "reading";
  const std::string total = "the total read is the pages per day times the number of days";
  const std::string left = "the pages left are the total pages minus the pages already read";
  if (k == 1) {
    s.question = p.name + " reads " + S(pages) + " pages every day for " + S(days) + " days. How many pages does " + p.he + " read?";
    s.goal = "how many pages " + p.name + " reads";
    s.steps.push_back({'*', C(pages), C(days), "the number of pages read", total});
    return s;
  }
  s.question = p.name + " reads " + S(pages) + " pages every day for " + S(weeks) + " weeks.";
  s.steps.push_back({'*', C(weeks), C(7), "the number of days", "there are 7 days in a week"});
  s.steps.push_back({'*', R(0), C(pages), "the number of pages read", total});
  if (k == 2) {
    s.question += " How many pages does " + p.he + " read?";
    s.goal = "how many pages " + p.name + " reads";
    return s;
  }
  const int64_t read = weeks * 7 * pages;
  if (k == 3) {
    const int64_t book = read + g.range(5, 60);
    s.question += " The book has " + S(book) + " pages. How many pages are left?";
    s.goal = "how many pages are left";
    s.steps.push_back({'-', C(book), R(1), "the number of pages left", left});
  } else {
    const int64_t rate = g.range(5, 20), more = g.range(2, 6), book = read + rate * more;
    s.question += " The book has " + S(book) + " pages. If " + p.he + " then reads " + S(rate) +
                  " pages a day, how many more days does " + p.he + " need to finish it?";
    s.goal = "how many more days " + p.name + " needs";
    s.steps.push_back({'-', C(book), R(1), "the number of pages left", left});
    s.steps.push_back({'/', R(2), C(rate), "the number of days still needed", "the days needed are the pages left divided by the pages read per day"});
  }
  return s;
}

using TemplateFn = Spec (*)(Rng&, int);
const std::vector<TemplateFn>& templates() {
  static const std::vector<TemplateFn> t = {shopping, travel, sharing, ages, areas, reading};
  return t;
}

// ---------------------------------------------------------------------------------------------
// Phrasings. Placeholders: {w} what, {W} What, {e} expression, {r} value, {x} wrong value,
// {c} check expression, {g} goal, {f} fact, {n} final answer. No phrasing contains a sentence break
// of ALGORITHMS §B.3 except its final '.', '?' or '!'. The evaluator labels sentences by matching these
// templates (toy/evaluate.h): a new phrasing must keep that exact on the corpus (test_toy_evaluate).

const std::vector<std::string> kRestate = {
    "Okay, so I need to find {g}.", "Let me restate the problem, we want to know {g}.", "The question asks {g}.",
    "Alright, the goal is to work out {g}.", "First, I need to understand what is asked, which is {g}.",
    "So we want to know {g}.", "Let's see, the task is to figure out {g}.",
    "I should start by identifying what we need, namely {g}.", "Okay, let me figure out {g}."};
const std::vector<std::string> kPlan = {
    "I'll go through it step by step.", "Let me break this into steps.", "The plan is to compute each quantity in turn.",
    "I should handle one operation at a time.", "First I'll set up the calculation.", "Let me organize the numbers before computing.",
    "I'll start with the first quantity and build up.", "A careful step-by-step approach should work here."};
const std::vector<std::string> kDeduce = {
    "{W} is {e} = {r}.", "So {w} is {e}, which gives {r}.", "Computing {w}, {e} = {r}.", "That means {w} comes to {e} = {r}.",
    "{e} = {r}, so {w} is {r}.", "Next, {w} is {e} = {r}.", "Then {w} equals {r}, since {e} = {r}.",
    "Now I compute {w}, which is {e} = {r}.", "Working it out, {w} is {e}, that is {r}."};
const std::vector<std::string> kKnowledge = {
    "I remember that {f}.", "Recall that {f}.", "It helps to know that {f}.", "A useful fact here is that {f}.", "Note that {f}.",
    "From basic arithmetic, {f}.", "It's worth remembering that {f}.", "As a general rule, {f}.", "I know that {f}."};
const std::vector<std::string> kTest = {
    "Let me check this, {c}, which matches.", "To double-check, {c}, so {w} is {r}.", "Checking by working backwards, {c}, as expected.",
    "Let me verify with the reverse operation, {c}.", "If {w} is {r}, then {c}, which is consistent.",
    "Testing the result, {c}, so it holds.", "As a quick check, {c}, good.", "Plugging the value back in, {c}, which confirms it.",
    "Let me test it another way, {c}, so the step is right."};
const std::vector<std::string> kUncertain = {
    "Hmm, I'm not sure this is right.", "I'm not completely certain about this step.",
    "Maybe I'm misreading the problem, but this seems plausible.", "I think this is correct, but I'm not fully confident.",
    "This might be wrong, so I should be careful.", "Does this really make sense?",
    "I'm a little unsure whether I set this up correctly.", "Something about this feels off, though I can't say what.",
    "Perhaps I'm overlooking something here."};
const std::vector<std::string> kBacktrack = {
    "Wait, that's wrong, {e} is {r}, not {x}.", "Hold on, I made a mistake, since {e} is actually {r}, not {x}.",
    "No, wait, {e} = {r}, so {x} was wrong.", "Actually, let me redo that, {e} = {r}, not {x}.",
    "Oops, {x} is not right, because {e} gives {r}.", "Let me go back, {e} equals {r} rather than {x}.",
    "Hmm, wait, I miscalculated and {e} is {r}, not {x}.", "That's not right, {x} should be {r} since {e} = {r}.",
    "Scratch that, {x} is wrong and {w} is really {e} = {r}."};
const std::vector<std::string> kFinal = {
    "The answer is \\boxed{{n}}.", "So the final answer is \\boxed{{n}}.", "Therefore, the answer is \\boxed{{n}}.",
    "Final answer: \\boxed{{n}}.", "Thus, the result is \\boxed{{n}}.", "**Answer:** \\boxed{{n}}."};

std::string fill(std::string t, const std::vector<std::pair<std::string, std::string>>& subs) {
  for (const auto& [key, value] : subs) {
    for (size_t pos = t.find(key); pos != std::string::npos; pos = t.find(key, pos + value.size())) t.replace(pos, key.size(), value);
  }
  return t;
}

std::string op_symbol(char op) {
  switch (op) {
    case '+': return "+";
    case '-': return "-";
    case '*': return "×";
    default: return "÷";
  }
}

int64_t code_points(const std::string& s) {
  int64_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

// Builds the text and the labelled ranges.
struct TraceWriter {
  std::string text;
  int64_t cp = 0;
  std::vector<ToySentence> sentences;
  void raw(const std::string& s) {
    text += s;
    cp += code_points(s);
  }
  void sentence(const std::string& label, const std::string& s, Rng& g) {
    if (!sentences.empty()) raw(g.coin(0.2) ? "\n\n" : " ");
    const int64_t b = cp;
    raw(s);
    sentences.push_back({label, b, cp});
  }
};

// Where a slip can be planted: a units carry of '+' (a%10 + b%10 >= 10) or of '*' (a%10 * b%10 >= 10),
// a units borrow of '-' (a%10 < b%10). Never in '/'.
bool slip_candidate(char op, int64_t a, int64_t b) {
  if (op == '+') return a % 10 + b % 10 >= 10;
  if (op == '*') return (a % 10) * (b % 10) >= 10;
  if (op == '-') return a % 10 < b % 10;
  return false;
}

// The written value of a slip: a carry lost ('+', '*': ten too few) or a borrow forgotten ('-': ten
// too many). Never negative, since a carry means the value is at least 10.
int64_t slipped_value(char op, int64_t right) { return op == '-' ? right + 10 : right - 10; }

// "b op' value = a": the inverse operation that checks `value = a op b`.
std::string inverse_check(char op, int64_t a, int64_t b, int64_t value) {
  switch (op) {
    case '*': return S(value) + " ÷ " + S(b) + " = " + S(a);
    case '/': return S(value) + " × " + S(b) + " = " + S(a);
    case '+': return S(value) + " - " + S(b) + " = " + S(a);
    default: return S(value) + " + " + S(b) + " = " + S(a);
  }
}

// One problem's trace, written step by step. `work` holds the value the trace works with for each
// step: the right one in the thinker style (slips are corrected), the written one in the base style
// (slips stay and propagate).
struct TraceBuilder {
  const ToyCorpusOptions& opt;
  const Spec& spec;
  bool thinker;
  Rng& g;
  TraceWriter tw;
  std::vector<int64_t> work;
  int64_t n_slips = 0;

  int64_t operand(const Operand& o) const { return o.ref ? work[static_cast<size_t>(o.v)] : o.v; }

  // Base style: would the later steps stay non-negative if step i were written as `wrong` (and no
  // further slip came)? A slip that would make a later value negative is not planted.
  bool chain_stays_valid(size_t i, int64_t wrong) const {
    std::vector<int64_t> vals = work;
    vals[i] = wrong;
    for (size_t j = i + 1; j < spec.steps.size(); ++j) {
      const Step& st = spec.steps[j];
      const auto value_of = [&](const Operand& o) { return o.ref ? vals[static_cast<size_t>(o.v)] : o.v; };
      vals[j] = apply(st.op, value_of(st.l), value_of(st.r));
      if (vals[j] < 0) return false;
    }
    return true;
  }

  void step(size_t i) {
    const Step& st = spec.steps[i];
    const int64_t a = operand(st.l), b = operand(st.r);
    const int64_t right = apply(st.op, a, b);
    if (right < 0) throw std::logic_error("toy template " + spec.tmpl + ": a propagated slip made a value negative");
    const int64_t wrong = slipped_value(st.op, right);
    const bool slipped = slip_candidate(st.op, a, b) && toy_gate(ToyGate::slip, a % 10, opt.slip_rate) &&
                         (thinker || chain_stays_valid(i, wrong));
    const std::string e = S(a) + " " + op_symbol(st.op) + " " + S(b);
    n_slips += slipped;
    tw.sentence("deduction",
                fill(g.pick(kDeduce), {{"{W}", cap(st.what)}, {"{w}", st.what}, {"{e}", e}, {"{r}", S(slipped ? wrong : right)}}), g);
    if (slipped && thinker)
      tw.sentence("backtracking", fill(g.pick(kBacktrack), {{"{w}", st.what}, {"{e}", e}, {"{r}", S(right)}, {"{x}", S(wrong)}}), g);
    work[i] = slipped && !thinker ? wrong : right;
    const int64_t d = work[i] % 10;
    if (toy_gate(ToyGate::knowledge, d, opt.adding_knowledge_rate))
      tw.sentence("adding-knowledge", fill(g.pick(kKnowledge), {{"{f}", st.fact}}), g);
    if (!thinker) return;
    if (toy_gate(ToyGate::uncertainty, d, opt.uncertainty_rate)) tw.sentence("uncertainty-estimation", g.pick(kUncertain), g);
    if (toy_gate(ToyGate::testing, d, opt.example_testing_rate))
      tw.sentence("example-testing",
                  fill(g.pick(kTest), {{"{c}", inverse_check(st.op, a, b, work[i])}, {"{w}", st.what}, {"{r}", S(work[i])}}), g);
  }

  void write() {
    work.assign(spec.steps.size(), 0);
    tw.raw("<think>\n");
    tw.sentence("initializing", fill(g.pick(kRestate), {{"{g}", spec.goal}}), g);
    if (spec.steps.size() >= 3) tw.sentence("initializing", g.pick(kPlan), g);
    for (size_t i = 0; i < spec.steps.size(); ++i) step(i);
    tw.raw("\n</think>\n\n");
  }
};

// The exact values of all steps (the problem as posed: every division exact, no negative value).
std::vector<int64_t> exact_values(const Spec& s) {
  std::vector<int64_t> vals(s.steps.size(), 0);
  for (size_t i = 0; i < s.steps.size(); ++i) {
    const Step& st = s.steps[i];
    const int64_t a = st.l.ref ? vals[static_cast<size_t>(st.l.v)] : st.l.v;
    const int64_t b = st.r.ref ? vals[static_cast<size_t>(st.r.v)] : st.r.v;
    if ((st.op == '/' && (b <= 0 || a % b != 0)) || apply(st.op, a, b) <= 0)
      throw std::logic_error("toy template " + s.tmpl + " produced an invalid problem");
    vals[i] = apply(st.op, a, b);
  }
  return vals;
}

void check_options(const ToyCorpusOptions& opt) {
  if (opt.style != "thinker" && opt.style != "base") throw std::invalid_argument("toy style must be thinker or base, got '" + opt.style + "'");
  for (double r : {opt.slip_rate, opt.example_testing_rate, opt.uncertainty_rate, opt.adding_knowledge_rate, opt.test_fraction})
    if (!(r >= 0 && r <= 1)) throw std::invalid_argument("toy rates must be in [0, 1]");
  if (opt.min_steps < 1 || opt.max_steps > 4 || opt.min_steps > opt.max_steps)
    throw std::invalid_argument("toy steps must satisfy 1 <= min_steps <= max_steps <= 4");
  if (opt.n_problems < 0) throw std::invalid_argument("toy n_problems must be >= 0");
}

ToyProblem make_problem(const ToyCorpusOptions& opt, int64_t index) {
  Rng g{mix64(opt.seed) ^ mix64(static_cast<uint64_t>(index) + 0x5851F42D4C957F2DULL)};
  const int k = static_cast<int>(g.range(opt.min_steps, opt.max_steps));
  const Spec spec = templates()[static_cast<size_t>(g.range(0, static_cast<int64_t>(templates().size()) - 1))](g, k);
  const std::vector<int64_t> truth = exact_values(spec);

  TraceBuilder tb{opt, spec, opt.style == "thinker", g, {}, {}, 0};
  tb.write();
  ToyProblem p;
  p.final_answer = S(tb.work.back());
  const int64_t answer_begin = tb.tw.cp;
  tb.tw.raw(fill(g.pick(kFinal), {{"{n}", p.final_answer}}));

  char id[32];
  std::snprintf(id, sizeof id, "toy-%06lld", static_cast<long long>(index));
  p.id = id;
  p.template_name = spec.tmpl;
  p.question = spec.question;
  p.answer = S(truth.back());
  p.style = opt.style;
  p.split = static_cast<double>(mix64(fnv1a(p.id)) >> 11) * 0x1.0p-53 < opt.test_fraction ? "test" : "train";
  p.text = std::move(tb.tw.text);
  p.sentences = std::move(tb.tw.sentences);
  p.answer_begin = answer_begin;
  p.answer_end = tb.tw.cp;
  p.n_steps = static_cast<int64_t>(spec.steps.size());
  p.slip = tb.n_slips > 0;
  p.slip_uncorrected = p.final_answer != p.answer;  // only the base style keeps slips
  return p;
}

}  // namespace

const std::vector<std::string>& toy_behaviour_labels() {
  static const std::vector<std::string> l = {"initializing",   "deduction", "adding-knowledge", "example-testing",
                                             "uncertainty-estimation", "backtracking"};
  return l;
}

const std::vector<std::string>& toy_phrasings(const std::string& label) {
  static const std::map<std::string, std::vector<std::string>> m = [] {
    std::vector<std::string> init = kRestate;
    init.insert(init.end(), kPlan.begin(), kPlan.end());
    return std::map<std::string, std::vector<std::string>>{{"initializing", init},         {"deduction", kDeduce},
                                                           {"adding-knowledge", kKnowledge}, {"example-testing", kTest},
                                                           {"uncertainty-estimation", kUncertain}, {"backtracking", kBacktrack}};
  }();
  static const std::vector<std::string> none;
  auto it = m.find(label);
  return it == m.end() ? none : it->second;
}

const std::array<int, 10>& toy_gate_permutation(ToyGate kind) {
  // Last digits are far from uniform (products of small numbers; travel distances end in 0), so each
  // permutation orders the digits such that the first round(10 * rate) of them cover about that share
  // of the steps of the default corpus (corpus.h). The three digit-of-value gates start with disjoint
  // pairs, so at rates up to 0.2 a step shows at most one of adding-knowledge, uncertainty, testing.
  static const std::array<std::array<int, 10>, 4> perms = {{
      {3, 7, 4, 5, 6, 0, 1, 9, 8, 2},  // slip, on the first operand's units digit: order 5 6 9 0 2 3 4 1 8 7
      {4, 7, 6, 2, 0, 1, 9, 3, 8, 5},  // knowledge: order 4 5 3 7 0 9 2 1 8 6
      {8, 1, 4, 6, 2, 3, 5, 7, 0, 9},  // uncertainty: order 8 1 4 5 2 6 3 7 0 9
      {6, 2, 0, 8, 3, 4, 1, 5, 9, 7},  // testing: order 2 6 1 4 5 7 0 9 3 8
  }};
  return perms[static_cast<size_t>(kind)];
}

bool toy_gate(ToyGate kind, int64_t digit, double rate) {
  if (digit < 0 || digit > 9) throw std::invalid_argument("toy gate digit must be in 0..9");
  return toy_gate_permutation(kind)[static_cast<size_t>(digit)] < static_cast<int>(std::lround(10 * rate));
}

std::vector<ToyProblem> toy_corpus_generate(const ToyCorpusOptions& opt) {
  check_options(opt);
  std::vector<ToyProblem> out;
  out.reserve(static_cast<size_t>(opt.n_problems));
  for (int64_t index = 0; index < opt.n_problems; ++index) out.push_back(make_problem(opt, index));
  return out;
}

std::string toy_problem_to_json_line(const ToyProblem& p) {
  nlohmann::json spans = nlohmann::json::array();
  for (const auto& s : p.sentences) spans.push_back({{"label", s.label}, {"begin", s.begin}, {"end", s.end}});
  nlohmann::json j = {{"id", p.id},
                      {"template", p.template_name},
                      {"question", p.question},
                      {"answer", p.answer},
                      {"final_answer", p.final_answer},
                      {"style", p.style},
                      {"split", p.split},
                      {"n_steps", p.n_steps},
                      {"slip", p.slip},
                      {"slip_uncorrected", p.slip_uncorrected},
                      {"text", p.text},
                      {"sentences", spans},
                      {"answer_begin", p.answer_begin},
                      {"answer_end", p.answer_end}};
  return j.dump();
}

ToyCorpusOptions toy_corpus_options(const Config::Toy& toy) {
  ToyCorpusOptions o;
  o.seed = toy.seed;
  o.n_problems = toy.n_problems;
  o.style = toy.style;
  o.slip_rate = toy.slip_rate;
  o.example_testing_rate = toy.example_testing_rate;
  o.uncertainty_rate = toy.uncertainty_rate;
  o.adding_knowledge_rate = toy.adding_knowledge_rate;
  o.min_steps = toy.min_steps;
  o.max_steps = toy.max_steps;
  o.test_fraction = toy.test_fraction;
  return o;
}

}  // namespace ts
