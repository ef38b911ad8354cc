// Typed errors. Library code throws; main() turns them into one log line and an exit code.
//   InputError  : a file or option the user gave is malformed. Message "<file>: <field>: <what>", exit 2.
// Anything else reaching main() is a bug or an environment failure (exit 1).
#pragma once
#include <stdexcept>
#include <string>

namespace ts {

inline constexpr int EXIT_BAD_INPUT = 2;
// `reduce` found tasks missing (their --array= list is printed); with reduce.allow_partial it exits 0.
inline constexpr int EXIT_INCOMPLETE = 3;

// An error message as one log line: newlines from file names or JSON snippets are escaped.
inline std::string error_one_line(const std::string& message) {
  std::string out;
  out.reserve(message.size());
  for (char c : message) {
    if (c == '\n') out += "\\n";
    else if (c == '\r') out += "\\r";
    else out.push_back(c);
  }
  return out;
}

class InputError : public std::runtime_error {
 public:
  InputError(std::string file, std::string field, const std::string& what)
      : std::runtime_error(file + ": " + field + ": " + what), file_(std::move(file)), field_(std::move(field)) {}
  const std::string& file() const { return file_; }
  const std::string& field() const { return field_; }

 private:
  std::string file_;
  std::string field_;
};

// A value that went non-finite (NaN or inf) in a computation: logits during generation, activations
// before they are stored. Never committed; the batch loop adds the stage and batch to the message.
class NonFiniteError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Work that is not finished yet (reduce with tasks missing): main() logs it and exits EXIT_INCOMPLETE.
class IncompleteError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace ts
