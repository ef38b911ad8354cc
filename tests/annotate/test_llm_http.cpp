// The llm annotator's HTTP backend (src/annotate/llm_http.h) without a server: the URL, the request
// body, reading response bodies, which statuses are retried, and failures that need no server
// (connection refused, an unsupported URL scheme, cancellation). The exchanges with a server are in
// test_llm_annotator.py (a fake OpenAI-compatible endpoint).
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <vector>

#include "annotate/llm_http.h"
#include "core/json.h"

namespace {

TEST(LlmHttp, ChatUrl) {
  EXPECT_EQ(ts::llm_chat_url("http://127.0.0.1:8000/v1"), "http://127.0.0.1:8000/v1/chat/completions");
  EXPECT_EQ(ts::llm_chat_url("https://api.openai.com/v1/"), "https://api.openai.com/v1/chat/completions");
  EXPECT_EQ(ts::llm_chat_url("http://h/v1/chat/completions"), "http://h/v1/chat/completions");
}

TEST(LlmHttp, RequestBody) {
  const ts::json j = ts::json::parse(ts::llm_chat_request("gpt-4.1", "Split this: «é» 🙂\n\"quoted\"", 123));
  EXPECT_EQ(j["model"], "gpt-4.1");
  EXPECT_EQ(j["temperature"], 0);
  EXPECT_EQ(j["max_tokens"], 123);
  ASSERT_EQ(j["messages"].size(), 1u);
  EXPECT_EQ(j["messages"][0]["role"], "user");
  EXPECT_EQ(j["messages"][0]["content"], "Split this: «é» 🙂\n\"quoted\"");
}

TEST(LlmHttp, ResponseBodies) {
  ts::LlmChatBody r = ts::llm_chat_reply(R"({"id": "x", "choices": [{"index": 0, "message": {"role": "assistant", "content": "[\"deduction\"]a[\"end-section\"]"}, "finish_reason": "stop"}]})");
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.text, "[\"deduction\"]a[\"end-section\"]");
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"not json at all", "not JSON"},
      {"[1, 2]", "not a JSON object"},
      {R"({"error": {"message": "rate limited", "type": "x"}})", "rate limited"},
      {R"({"choices": []})", "no choices"},
      {R"({"choices": "x"})", "no choices"},
      {R"({"choices": [{"message": {"content": null}, "finish_reason": "content_filter"}]})", "content_filter"},
      {R"({"choices": [{"text": "legacy"}]})", "not a string"},
      {std::string("{\"choices\": [{\"message\": {\"content\": \"\xff\"}}]}"), "not JSON"},
  };
  for (const auto& [body, needle] : bad) {
    r = ts::llm_chat_reply(body);
    EXPECT_FALSE(r.ok) << body;
    EXPECT_NE(r.error.find(needle), std::string::npos) << body << " -> " << r.error;
  }
}

TEST(LlmHttp, RetryableStatuses) {
  for (long s : {408L, 409L, 429L, 500L, 502L, 503L, 504L}) EXPECT_TRUE(ts::llm_http_retryable(s)) << s;
  for (long s : {400L, 401L, 403L, 404L, 422L}) EXPECT_FALSE(ts::llm_http_retryable(s)) << s;
}

// A local port nothing listens on.
int closed_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

ts::LlmHttpOptions options(const std::string& endpoint) {
  ts::LlmHttpOptions o;
  o.endpoint = endpoint;
  o.model = std::string("test-model");
  o.timeout_seconds = 5;
  o.retries = 2;
  o.retry_seconds = 0.01;
  o.concurrency = 2;
  return o;
}

TEST(LlmHttp, ConnectionRefusedIsRetriedThenReported) {
  const ts::LlmHttpBackend backend(options("http://127.0.0.1:" + std::to_string(closed_port()) + "/v1"));
  EXPECT_EQ(backend.identity().find("openai-compatible http://127.0.0.1:"), 0u);
  const std::vector<std::string> prompts = {"a", "b", "c"};
  const auto t0 = std::chrono::steady_clock::now();
  const std::vector<ts::LlmReply> out = backend.complete(prompts);
  ASSERT_EQ(out.size(), 3u);
  for (const ts::LlmReply& r : out) {
    EXPECT_FALSE(r.ok);
    EXPECT_EQ(r.attempts, 3);  // 1 + llm_retries
    EXPECT_NE(r.error.find("onnect"), std::string::npos) << r.error;
  }
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 4.0);
}

TEST(LlmHttp, UnsupportedSchemeIsNotRetried) {
  const ts::LlmHttpBackend backend(options("htp://127.0.0.1:1/v1"));
  const std::vector<std::string> prompts = {"a"};
  const std::vector<ts::LlmReply> out = backend.complete(prompts);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_FALSE(out[0].ok);
  EXPECT_EQ(out[0].attempts, 1);
}

TEST(LlmHttp, CancelledRequestsFailAtOnce) {
  ts::LlmHttpOptions o = options("http://127.0.0.1:" + std::to_string(closed_port()) + "/v1");
  o.retry_seconds = 30;  // would wait, but the stop comes first
  o.cancelled = [] { return true; };
  const ts::LlmHttpBackend backend(o);
  const std::vector<std::string> prompts = {"a", "b"};
  const auto t0 = std::chrono::steady_clock::now();
  const std::vector<ts::LlmReply> out = backend.complete(prompts);
  for (const ts::LlmReply& r : out) {
    EXPECT_FALSE(r.ok);
    EXPECT_NE(r.error.find("cancelled"), std::string::npos) << r.error;
  }
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 2.0);
}

TEST(LlmHttp, NoPromptsNoRequests) {
  const ts::LlmHttpBackend backend(options("http://127.0.0.1:1/v1"));
  EXPECT_TRUE(backend.complete({}).empty());
}

}  // namespace
