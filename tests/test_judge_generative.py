"""The generative judge against a small local server speaking the chat-completions protocol (no network)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from recux.errors import ConfigError
from recux.generative_judge import PROMPT_VERSION, SYSTEM, GenerativeJudge, JudgeReplyError, parse_rating


class _Handler(BaseHTTPRequestHandler):
    """Answers with the number of history lines rated >= 4 (capped at 5), or server.reply when set."""

    def do_POST(self):  # noqa: N802 (http.server's name)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append({"path": self.path, "body": body, "auth": self.headers.get("Authorization")})
        prompt = body["messages"][-1]["content"]
        liked = sum(1 for line in prompt.splitlines() if line.startswith("- ") and float(line.rsplit(":", 1)[1]) >= 4)
        content = self.server.reply or f"I would say {min(5, max(1, liked))}."
        out = json.dumps({"id": "x", "object": "chat.completion", "model": body["model"],
                          "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                                       "finish_reason": "stop"}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    srv = HTTPServer(("127.0.0.1", 0), _Handler)
    srv.requests, srv.reply = [], None
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def test_rates_through_the_chat_completions_protocol(server):
    url = f"http://127.0.0.1:{server.server_port}/v1"
    judge = GenerativeJudge(url, "tiny-chat", api_key="k", max_history=3)
    history = [("Heat (1995): Action", 5.0), ("Toy Story (1995): Animation", 2.0), ("Fargo (1996): Crime", 4.0),
               ("Babe (1995): Children's", 4.5)]
    assert judge.rate(history, "Casino (1995): Drama") == 2  # the last 3 history items: two rated >= 4
    req = server.requests[-1]
    assert req["path"] == "/v1/chat/completions" and req["auth"] == "Bearer k"
    body = req["body"]
    assert body["model"] == "tiny-chat" and body["temperature"] == 0.0
    assert body["messages"][0] == {"role": "system", "content": SYSTEM}
    assert "Heat" not in body["messages"][1]["content"] and "New item: Casino (1995): Drama" in \
        body["messages"][1]["content"]
    assert judge.describe()["prompt_version"] == PROMPT_VERSION
    server.reply = "Sorry, I cannot rate that."
    with pytest.raises(JudgeReplyError, match="no rating 1-5"):
        judge.rate(history, "Casino (1995): Drama")


@pytest.mark.parametrize(("reply", "rating"), [("4", 4), ("Rating: 5 stars", 5), ("3/5", 3), ("**1**", 1)])
def test_parse_rating(reply, rating):
    assert parse_rating(reply) == rating


@pytest.mark.parametrize("reply", ["", "10", "4.5", "0 stars", "none"])
def test_parse_rating_refuses_replies_without_a_single_digit_rating(reply):
    with pytest.raises(JudgeReplyError):
        parse_rating(reply)


def test_bad_settings_and_no_server_are_clear_errors():
    with pytest.raises(ConfigError, match="http"):
        GenerativeJudge("localhost:8000", "m")
    import socket

    with socket.socket() as s:  # a free port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ConfigError, match="no answer"):
        GenerativeJudge(f"http://127.0.0.1:{port}/v1", "m", timeout=2).rate([], "x")
