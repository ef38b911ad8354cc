// An LlmBackend (annotate/llm.h) on an OpenAI-compatible chat completions endpoint (OpenAI, vLLM,
// llama.cpp's server, SGLang, OpenRouter, ...), through libcurl.
//
// Request: POST <endpoint>/chat/completions (or the endpoint itself when it already ends in
// /chat/completions) with the JSON body {"model", "messages": [{"role": "user", "content": prompt}],
// "temperature": 0, "max_tokens"}; headers Content-Type and Accept application/json, and
// "Authorization: Bearer <key>" when a key is given (the stage reads it from the environment
// variable annotate.llm_api_key_env, never from a file). Reply: choices[0].message.content.
//
// complete() keeps up to `concurrency` requests in flight (one curl multi handle, no threads). A
// request fails after `timeout_seconds` (connection included). A failed attempt is retried up to
// `retries` more times when retrying can help: connection errors and time-outs, HTTP 408, 409, 429 and
// 5xx, and a 2xx body that is not a chat completion; not for HTTP 400, 401, 403, 404, 422 and other 4xx,
// or a malformed URL. Retry k (1-based) of a request waits retry_seconds * 2^(k-1), or the server's
// Retry-After when longer (at most 600 s). The last error is the failed reply's `error`.
#pragma once
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "annotate/llm.h"

namespace ts {

struct LlmHttpOptions {
  std::string endpoint;           // base URL (e.g. https://api.openai.com/v1) or the full .../chat/completions URL
  std::string model;              // the request's "model"
  std::string api_key;            // empty: no Authorization header
  int64_t max_tokens = 4096;      // the request's "max_tokens"
  double timeout_seconds = 300;   // per attempt
  int64_t retries = 3;            // further attempts after a failed one
  double retry_seconds = 20;      // back-off base
  int64_t concurrency = 8;        // requests in flight
  std::function<bool()> cancelled;  // polled about 5 times a second; true fails what is left at once
};

// The URL requests go to (see the header).
std::string llm_chat_url(std::string_view endpoint);

// The JSON body of one request.
std::string llm_chat_request(const std::string& model, const std::string& prompt, int64_t max_tokens);

// What a response body holds: the reply (ok), or why it is not a chat completion.
struct LlmChatBody {
  bool ok = false;
  std::string text, error;
};
LlmChatBody llm_chat_reply(std::string_view body);

// Whether an HTTP status is worth another attempt (408, 409, 429, 5xx).
bool llm_http_retryable(long status);

class LlmHttpBackend : public LlmBackend {
 public:
  explicit LlmHttpBackend(LlmHttpOptions options);
  // "openai-compatible <url> model <model> temperature 0 max_tokens <n>" (no key, no transport limits).
  std::string identity() const override;
  std::vector<LlmReply> complete(std::span<const std::string> prompts) const override;

 private:
  LlmHttpOptions opt_;
  std::string url_;
};

}  // namespace ts
