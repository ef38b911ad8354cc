// The toy corpus's word-problem templates (problem_templates.h).
#include "toy/problem_templates.h"

#include <algorithm>

namespace ts::toy_detail {

std::string S(int64_t v) { return std::to_string(v); }
std::string cap(std::string s) {
  if (!s.empty() && s[0] >= 'a' && s[0] <= 'z') s[0] = static_cast<char>(s[0] - 'a' + 'A');
  return s;
}

int64_t apply(char op, int64_t a, int64_t b) {
  switch (op) {
    case '+': return a + b;
    case '-': return a - b;
    case '*': return a * b;
    default: return a / b;
  }
}

namespace {

Operand C(int64_t v) { return {false, v}; }
Operand R(int64_t i) { return {true, i}; }

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

}  // namespace

const std::vector<TemplateFn>& problem_templates() {
  static const std::vector<TemplateFn> t = {shopping, travel, sharing, ages, areas, reading};
  return t;
}

}  // namespace ts::toy_detail
