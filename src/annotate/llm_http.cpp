// The OpenAI-compatible HTTP backend of the llm annotator (llm_http.h).
#include "annotate/llm_http.h"

#include <curl/curl.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>

#include "core/json.h"

namespace ts {

namespace {

using Clock = std::chrono::steady_clock;
constexpr size_t MAX_BODY = size_t{64} << 20;  // a response larger than this is an error, not a reply
constexpr double MAX_WAIT_SECONDS = 600;
constexpr std::string_view CHAT_PATH = "/chat/completions";

void curl_global_once() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) throw std::runtime_error("libcurl: curl_global_init failed");
  });
}

// One attempt of one request.
struct Transfer {
  size_t index = 0;
  CURL* easy = nullptr;
  curl_slist* headers = nullptr;
  std::string body;
  bool too_big = false;
  char errbuf[CURL_ERROR_SIZE] = {};
  Transfer() = default;
  Transfer(const Transfer&) = delete;
  Transfer& operator=(const Transfer&) = delete;
  ~Transfer() {
    if (easy) curl_easy_cleanup(easy);
    if (headers) curl_slist_free_all(headers);
  }
};

size_t on_data(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t bytes = size * n;
  if (t->body.size() + bytes > MAX_BODY) {
    t->too_big = true;
    return 0;  // CURLE_WRITE_ERROR
  }
  t->body.append(data, bytes);
  return bytes;
}

struct Outcome {
  bool ok = false, retryable = false;
  std::string text, error;
  double retry_after = 0;  // seconds the server asked for
};

Outcome evaluate(const Transfer& t, CURLcode code, double timeout_seconds) {
  Outcome o;
  long status = 0;
  curl_easy_getinfo(t.easy, CURLINFO_RESPONSE_CODE, &status);
  curl_off_t retry_after = 0;
  if (curl_easy_getinfo(t.easy, CURLINFO_RETRY_AFTER, &retry_after) == CURLE_OK && retry_after > 0) o.retry_after = static_cast<double>(retry_after);
  if (code != CURLE_OK) {
    if (code == CURLE_OPERATION_TIMEDOUT) o.error = "no response within " + fmt::format("{:g}", timeout_seconds) + " s (annotate.llm_timeout_seconds)";
    else if (t.too_big) o.error = "response larger than " + std::to_string(MAX_BODY >> 20) + " MiB";
    else o.error = t.errbuf[0] ? std::string(t.errbuf) : std::string(curl_easy_strerror(code));
    o.retryable = code != CURLE_URL_MALFORMAT && code != CURLE_UNSUPPORTED_PROTOCOL && !t.too_big;
    return o;
  }
  if (status < 200 || status >= 300) {
    o.error = "HTTP " + std::to_string(status) + ": " + llm_excerpt(t.body, 200);
    o.retryable = llm_http_retryable(status);
    return o;
  }
  LlmChatBody r = llm_chat_reply(t.body);
  if (!r.ok) {
    o.error = "HTTP " + std::to_string(status) + " but " + r.error;
    o.retryable = true;
    return o;
  }
  o.ok = true;
  o.text = std::move(r.text);
  return o;
}

}  // namespace

std::string llm_chat_url(std::string_view endpoint) {
  std::string url(endpoint);
  while (!url.empty() && url.back() == '/') url.pop_back();
  if (url.size() >= CHAT_PATH.size() && url.compare(url.size() - CHAT_PATH.size(), CHAT_PATH.size(), CHAT_PATH) == 0) return url;
  return url + std::string(CHAT_PATH);
}

std::string llm_chat_request(const std::string& model, const std::string& prompt, int64_t max_tokens) {
  const json body = {{"model", model},
                     {"messages", json::array({json{{"role", "user"}, {"content", prompt}}})},
                     {"temperature", 0},
                     {"max_tokens", max_tokens}};
  return body.dump(-1, ' ', false, json::error_handler_t::replace);
}

LlmChatBody llm_chat_reply(std::string_view body) {
  LlmChatBody r;
  const json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    r.error = "the body is not JSON: " + llm_excerpt(body, 200);
    return r;
  }
  if (!j.is_object()) {
    r.error = "the body is not a JSON object: " + llm_excerpt(body, 200);
    return r;
  }
  if (j.contains("error") && !j["error"].is_null()) {
    const json& e = j["error"];
    r.error = "error: " + llm_excerpt(e.is_object() && e.contains("message") && e["message"].is_string() ? e["message"].get<std::string>()
                                                                                                            : e.dump(-1, ' ', false, json::error_handler_t::replace),
                                      200);
    return r;
  }
  const auto choices = j.find("choices");
  if (choices == j.end() || !choices->is_array() || choices->empty() || !(*choices)[0].is_object()) {
    r.error = "no choices in the body: " + llm_excerpt(body, 200);
    return r;
  }
  const json& c = (*choices)[0];
  const auto message = c.find("message");
  if (message == c.end() || !message->is_object() || !message->contains("content") || !(*message)["content"].is_string()) {
    const std::string finish = c.contains("finish_reason") && c["finish_reason"].is_string() ? c["finish_reason"].get<std::string>() : "none";
    r.error = "choices[0].message.content is not a string (finish_reason " + finish + ")";
    return r;
  }
  r.ok = true;
  r.text = (*message)["content"].get<std::string>();
  return r;
}

bool llm_http_retryable(long status) { return status == 408 || status == 409 || status == 429 || status >= 500; }

LlmHttpBackend::LlmHttpBackend(LlmHttpOptions options) : opt_(std::move(options)), url_(llm_chat_url(opt_.endpoint)) {
  if (opt_.concurrency < 1 || opt_.retries < 0 || !(opt_.timeout_seconds > 0) || !(opt_.retry_seconds >= 0) || opt_.max_tokens < 1)
    throw std::logic_error("LlmHttpBackend: options out of range (config_validate checks them)");
  curl_global_once();
}

std::string LlmHttpBackend::identity() const {
  return "openai-compatible " + url_ + " model " + opt_.model + " temperature 0 max_tokens " + std::to_string(opt_.max_tokens);
}

std::vector<LlmReply> LlmHttpBackend::complete(std::span<const std::string> prompts) const {
  const size_t n = prompts.size();
  std::vector<LlmReply> out(n);
  std::vector<std::string> bodies(n);
  for (size_t i = 0; i < n; ++i) bodies[i] = llm_chat_request(opt_.model, prompts[i], opt_.max_tokens);
  std::vector<Clock::time_point> due(n, Clock::now());
  std::deque<size_t> waiting;  // neither finished nor in flight
  for (size_t i = 0; i < n; ++i) waiting.push_back(i);

  std::unique_ptr<CURLM, decltype(&curl_multi_cleanup)> multi(curl_multi_init(), curl_multi_cleanup);
  if (!multi) throw std::runtime_error("libcurl: curl_multi_init failed");
  std::map<CURL*, std::unique_ptr<Transfer>> active;
  const auto timeout_ms = static_cast<long>(std::ceil(opt_.timeout_seconds * 1000));

  auto start = [&](size_t i) {
    auto t = std::make_unique<Transfer>();
    t->index = i;
    t->easy = curl_easy_init();
    if (!t->easy) throw std::runtime_error("libcurl: curl_easy_init failed");
    for (const char* h : {"Content-Type: application/json", "Accept: application/json", "Expect:"}) t->headers = curl_slist_append(t->headers, h);
    if (!opt_.api_key.empty()) t->headers = curl_slist_append(t->headers, ("Authorization: Bearer " + opt_.api_key).c_str());
    CURL* e = t->easy;
    curl_easy_setopt(e, CURLOPT_URL, url_.c_str());
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, bodies[i].data());
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(bodies[i].size()));
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->headers);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, t.get());
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->errbuf);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(e, CURLOPT_USERAGENT, "thinksteer");
    curl_multi_add_handle(multi.get(), e);
    ++out[i].attempts;
    active.emplace(e, std::move(t));
  };

  while (!waiting.empty() || !active.empty()) {
    if (opt_.cancelled && opt_.cancelled()) {
      for (auto& [e, t] : active) {
        curl_multi_remove_handle(multi.get(), e);
        out[t->index].error = "cancelled (stop requested)";
      }
      active.clear();
      for (size_t i : waiting) out[i].error = out[i].error.empty() ? "cancelled (stop requested)" : out[i].error + "; then cancelled (stop requested)";
      break;
    }
    const auto now = Clock::now();
    for (auto it = waiting.begin(); it != waiting.end() && active.size() < static_cast<size_t>(opt_.concurrency);) {
      if (due[*it] > now) {
        ++it;
        continue;
      }
      const size_t i = *it;
      it = waiting.erase(it);
      start(i);
    }
    int running = 0;
    curl_multi_perform(multi.get(), &running);
    int left = 0;
    while (CURLMsg* m = curl_multi_info_read(multi.get(), &left)) {
      if (m->msg != CURLMSG_DONE) continue;
      CURL* e = m->easy_handle;
      const CURLcode code = m->data.result;
      auto node = active.extract(e);
      curl_multi_remove_handle(multi.get(), e);
      if (node.empty()) continue;
      const Transfer& t = *node.mapped();
      const size_t i = t.index;
      Outcome o = evaluate(t, code, opt_.timeout_seconds);
      if (o.ok) {
        out[i].ok = true;
        out[i].text = std::move(o.text);
        out[i].error.clear();
        continue;
      }
      out[i].error = std::move(o.error);
      if (o.retryable && out[i].attempts <= opt_.retries) {
        const double wait = std::min(MAX_WAIT_SECONDS, std::max(opt_.retry_seconds * std::ldexp(1.0, static_cast<int>(out[i].attempts - 1)), o.retry_after));
        spdlog::warn("llm: request {} of {} to {}: {} (attempt {} of {}); retrying in {:g} s", i + 1, n, url_, out[i].error, out[i].attempts,
                     opt_.retries + 1, wait);
        due[i] = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(wait));
        waiting.push_back(i);
      }
    }
    // Sleep until a transfer has news, a retry is due, or the next cancellation check.
    long wait_ms = 200;
    if (active.size() < static_cast<size_t>(opt_.concurrency))
      for (size_t i : waiting)
        wait_ms = std::min<long>(wait_ms, std::max<long>(0, static_cast<long>(std::chrono::duration_cast<std::chrono::milliseconds>(due[i] - Clock::now()).count())));
    if (!waiting.empty() || !active.empty()) curl_multi_poll(multi.get(), nullptr, 0, static_cast<int>(wait_ms), nullptr);
  }
  return out;
}

}  // namespace ts
