#include "tokenizer/regex.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <cctype>

#include "core/error.h"
#include "core/utf8.h"
#include "tokenizer/unicode_compat.h"

namespace ts {

namespace {

bool is_hex(char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; }

// Per-thread PCRE2 match resources (match data with one pair is enough: only group 0 is read).
struct MatchResources {
  pcre2_match_data* data = nullptr;
  pcre2_match_context* context = nullptr;
  pcre2_jit_stack* jit_stack = nullptr;

  MatchResources() {
    data = pcre2_match_data_create(1, nullptr);
    context = pcre2_match_context_create(nullptr);
    jit_stack = pcre2_jit_stack_create(32 * 1024, 64 * 1024 * 1024, nullptr);
    if (context && jit_stack) pcre2_jit_stack_assign(context, nullptr, jit_stack);
  }
  ~MatchResources() {
    pcre2_match_data_free(data);
    pcre2_match_context_free(context);
    pcre2_jit_stack_free(jit_stack);
  }
  MatchResources(const MatchResources&) = delete;
  MatchResources& operator=(const MatchResources&) = delete;
};

MatchResources& match_resources() {
  thread_local MatchResources resources;
  if (!resources.data || !resources.context) throw std::bad_alloc();
  return resources;
}

std::string pcre2_message(int code) {
  PCRE2_UCHAR buffer[256];
  int n = pcre2_get_error_message(code, buffer, sizeof(buffer));
  if (n < 0) return "PCRE2 error " + std::to_string(code);
  return std::string(reinterpret_cast<const char*>(buffer), static_cast<size_t>(n));
}

// Oniguruma's Unicode \w: letters, marks, decimal numbers, connector punctuation.
std::string word_class_items() {
  std::string items = R"(\p{L}\p{M}\p{Nd}\p{Pc})";
  for (const char* category : {"L", "M", "Nd", "Pc"}) unicode_compat::append_recent_ranges(items, category);
  return items;
}

bool is_general_category(std::string_view name) {
  return !name.empty() && name.size() <= 2 && std::string_view("LMNPSZC").find(name[0]) != std::string_view::npos;
}

// Translates \p{X} / \P{X} / \p{^X} / \pX at p[i] (p[i] == '\\', p[i+1] is 'p' or 'P'); returns
// false when it is not a property escape. General categories get the characters PCRE2 does not
// know yet (see unicode_compat.h).
bool translate_property(std::string_view p, size_t& i, bool in_class, std::string& out) {
  bool negated = p[i + 1] == 'P';
  std::string_view name;
  size_t next;
  if (i + 2 < p.size() && p[i + 2] == '{') {
    size_t close = p.find('}', i + 3);
    if (close == std::string_view::npos) return false;
    name = p.substr(i + 3, close - (i + 3));
    next = close + 1;
  } else if (i + 2 < p.size()) {
    name = p.substr(i + 2, 1);
    next = i + 3;
  } else {
    return false;
  }
  if (!name.empty() && name[0] == '^') {
    negated = !negated;
    name.remove_prefix(1);
  }
  std::string extra;
  if (is_general_category(name)) unicode_compat::append_recent_ranges(extra, name);
  std::string property = "\\p{" + std::string(name) + "}";
  if (extra.empty() || (in_class && negated)) {
    out += (negated ? "\\P{" : "\\p{") + std::string(name) + "}";
  } else if (in_class) {
    out += property + extra;
  } else {
    out += (negated ? "[^" : "[") + property + extra + "]";
  }
  i = next;
  return true;
}

}  // namespace

struct Regex::Compiled {
  pcre2_code* code = nullptr;
  std::string pattern;
  std::string file;
  std::string field;
  ~Compiled() { pcre2_code_free(code); }
};

std::string translate_oniguruma_pattern(std::string_view p) {
  std::string out;
  out.reserve(p.size() + 16);
  bool in_class = false;
  size_t i = 0;
  while (i < p.size()) {
    char c = p[i];
    if (c == '\\' && i + 1 < p.size()) {
      char e = p[i + 1];
      switch (e) {
        case 's': out += R"(\p{White_Space})"; i += 2; continue;
        case 'S': out += R"(\P{White_Space})"; i += 2; continue;
        case 'p':
        case 'P':
          if (translate_property(p, i, in_class, out)) continue;
          break;
        case 'w':
          if (!in_class) out += '[';
          out += word_class_items();
          if (!in_class) out += ']';
          i += 2;
          continue;
        case 'W':
          if (!in_class) {
            out += "[^";
            out += word_class_items();
            out += ']';
            i += 2;
            continue;
          }
          break;
        case 'h':
          out += in_class ? "0-9a-fA-F" : "[0-9a-fA-F]";
          i += 2;
          continue;
        case 'H':
          if (!in_class) {
            out += "[^0-9a-fA-F]";
            i += 2;
            continue;
          }
          break;
        case 'u':
          if (i + 6 <= p.size() && is_hex(p[i + 2]) && is_hex(p[i + 3]) && is_hex(p[i + 4]) &&
              is_hex(p[i + 5])) {
            out += "\\x{";
            out.append(p.substr(i + 2, 4));
            out += "}";
            i += 6;
            continue;
          }
          break;
        default: break;
      }
      out.push_back(c);
      out.push_back(e);
      i += 2;
      continue;
    }
    if (in_class) {
      if (c == '[' && i + 1 < p.size() && p[i + 1] == ':') {
        size_t close = p.find(":]", i + 2);
        if (close != std::string_view::npos) {
          out.append(p.substr(i, close + 2 - i));
          i = close + 2;
          continue;
        }
      }
      if (c == ']') in_class = false;
      out.push_back(c);
      ++i;
      continue;
    }
    if (c == '[') {
      in_class = true;
      out.push_back(c);
      ++i;
      // A ']' right after '[' or '[^' is a literal.
      if (i < p.size() && p[i] == '^') out.push_back(p[i++]);
      if (i < p.size() && p[i] == ']') out.push_back(p[i++]);
      continue;
    }
    if (c == '(' && i + 2 < p.size() && p[i + 1] == '?') {
      // Inline option group (?imx-imx) or (?imx-imx:...): Ruby's 'm' is PCRE2's 's'.
      size_t j = i + 2;
      while (j < p.size() && (p[j] == 'i' || p[j] == 'm' || p[j] == 'x' || p[j] == '-')) ++j;
      if (j > i + 2 && j < p.size() && (p[j] == ':' || p[j] == ')')) {
        out += "(?";
        for (size_t k = i + 2; k < j; ++k) out.push_back(p[k] == 'm' ? 's' : p[k]);
        i = j;
        continue;
      }
    }
    out.push_back(c);
    ++i;
  }
  return out;
}

Regex::Regex(std::string_view pattern, const std::string& file, const std::string& field) {
  auto compiled = std::make_shared<Compiled>();
  compiled->pattern = translate_oniguruma_pattern(pattern);
  compiled->file = file;
  compiled->field = field;
  pcre2_compile_context* cctx = pcre2_compile_context_create(nullptr);
  if (!cctx) throw std::bad_alloc();
  pcre2_set_newline(cctx, PCRE2_NEWLINE_LF);
  int error_code = 0;
  PCRE2_SIZE error_offset = 0;
  compiled->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(compiled->pattern.data()), compiled->pattern.size(),
                                 PCRE2_UTF | PCRE2_UCP | PCRE2_MULTILINE, &error_code, &error_offset, cctx);
  pcre2_compile_context_free(cctx);
  if (!compiled->code) {
    throw InputError(file, field,
                     "regex does not compile (" + pcre2_message(error_code) + " at offset " +
                         std::to_string(error_offset) + " of translated pattern '" + compiled->pattern + "')");
  }
  // JIT is an optimisation only: on failure the interpreter is used.
  (void)pcre2_jit_compile(compiled->code, PCRE2_JIT_COMPLETE);
  compiled_ = std::move(compiled);
}

Regex Regex::literal(std::string_view literal, const std::string& file, const std::string& field) {
  std::string escaped;
  for (char c : literal) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u < 0x80 && !std::isalnum(u)) escaped.push_back('\\');
    escaped.push_back(c);
  }
  // Only non-alphanumeric ASCII is escaped, so the translation (which rewrites letter escapes) keeps it literal.
  return Regex(escaped, file, field);
}

const std::string& Regex::pcre2_pattern() const { return compiled_->pattern; }

void Regex::find_all(std::string_view text, std::vector<std::pair<uint32_t, uint32_t>>& out) const {
  MatchResources& res = match_resources();
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  const size_t n = text.size();
  size_t last_end = 0;
  bool have_last = false;
  size_t last_match_end = 0;
  while (last_end <= n) {
    int rc = pcre2_match(compiled_->code, subject, n, last_end, PCRE2_NO_UTF_CHECK, res.data, res.context);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT) {
      rc = pcre2_match(compiled_->code, subject, n, last_end, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT, res.data,
                       res.context);
      if (rc == PCRE2_ERROR_NOMATCH) break;
    }
    if (rc < 0) {
      throw InputError(compiled_->file, compiled_->field, "regex matching failed: " + pcre2_message(rc));
    }
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(res.data);
    size_t s = ov[0], e = ov[1];
    if (s == e && have_last && last_match_end == e) {
      if (last_end >= n) break;
      last_end += utf8::sequence_length(static_cast<unsigned char>(text[last_end]));
      continue;
    }
    last_end = e;
    have_last = true;
    last_match_end = e;
    out.emplace_back(static_cast<uint32_t>(s), static_cast<uint32_t>(e));
  }
}

bool Regex::matches_prefix(std::string_view text, size_t& match_end) const {
  MatchResources& res = match_resources();
  int rc = pcre2_match(compiled_->code, reinterpret_cast<PCRE2_SPTR>(text.data()), text.size(), 0,
                       PCRE2_NO_UTF_CHECK | PCRE2_ANCHORED, res.data, res.context);
  if (rc < 0) return false;
  match_end = pcre2_get_ovector_pointer(res.data)[1];
  return true;
}

}  // namespace ts
