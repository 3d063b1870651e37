"""Judges: the OpenAI-compatible HTTP judge against a local server (bounded requests, retries, cache)
never writes the API key anywhere; the local judge always returns a valid verdict."""
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from gemkit.builtin.judges import HttpJudge, HttpJudgeConfig, JudgeRequestError, LocalJudge
from gemkit.errors import ConfigError

SECRET = "sk-test-planted-9f8e7d6c5b4a"


class FakeAPI(BaseHTTPRequestHandler):
    """Replies "[[A]]" when answer A contains 'good', else "[[B]]"; fails the first `fail_first` requests with 503."""

    seen: list = []
    fail_first = 0

    def do_POST(self):  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).seen.append({"auth": self.headers.get("Authorization"), "path": self.path, "body": body})
        if len(type(self).seen) <= type(self).fail_first:
            self.send_response(503)
            self.end_headers()
            return
        user = body["messages"][-1]["content"]
        answer_a = user.split("[Answer A]")[1].split("[Answer B]")[0]
        reply = "A is better. [[A]]" if "good" in answer_a else "B is better. [[B]]"
        data = json.dumps({"choices": [{"message": {"role": "assistant", "content": reply}}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    FakeAPI.seen, FakeAPI.fail_first = [], 0
    httpd = HTTPServer(("127.0.0.1", 0), FakeAPI)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()
    httpd.server_close()


def test_http_judge_in_mt_bench_never_writes_the_key(server, tiny_bundle, assets, tmp_path, monkeypatch):
    """mt-bench with the openai judge: 4 questions × 2 turns × 2 orders = 16 comparisons; identical requests are
    sent once (random:tiny answers as its own baseline, so both orders can coincide), so 8..16 distinct requests, each with
    the key in the header only; a re-run is served from the cache (0 new requests); no written file has the key."""
    from gemkit.evaluation import evaluate

    monkeypatch.setenv("GEMKIT_TEST_JUDGE_KEY", SECRET)
    options = {"data": str(assets / "benchmarks" / "mt_bench.jsonl"), "baseline": "random:tiny", "max_new_tokens": 4,
               "judge": "openai", "judge_options": {"endpoint": server, "model": "judge-x",
                                                     "key_env": "GEMKIT_TEST_JUDGE_KEY", "backoff_s": 0.0}}
    result = evaluate("mt-bench", tiny_bundle, options=options, out_dir=tmp_path)
    sent = len(FakeAPI.seen)
    assert 8 <= sent <= 16 and sent == len({json.dumps(r["body"], sort_keys=True) for r in FakeAPI.seen})
    assert all(r["auth"] == f"Bearer {SECRET}" and r["path"] == "/v1/chat/completions" for r in FakeAPI.seen)
    assert all(r["body"]["model"] == "judge-x" and r["body"]["temperature"] == 0.0 for r in FakeAPI.seen)
    assert result.counts["win"] + result.counts["loss"] + result.counts["tie"] == 8
    evaluate("mt-bench", tiny_bundle, options=options, out_dir=tmp_path)
    assert len(FakeAPI.seen) == sent  # cached
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any("judge_cache" in str(p) for p in written) and (tmp_path / "metrics.json").is_file()
    for path in written:
        assert SECRET not in path.read_text(encoding="utf-8"), path


def test_http_judge_retries_then_succeeds_and_gives_up_boundedly(server, monkeypatch):
    """Two 503s then a reply: 3 requests. With max_retries=1 against endless 503s: exactly 2 requests, then an error
    that does not contain the key."""
    monkeypatch.setenv("GEMKIT_TEST_JUDGE_KEY", SECRET)
    FakeAPI.fail_first = 2
    judge = HttpJudge(HttpJudgeConfig(endpoint=server, key_env="GEMKIT_TEST_JUDGE_KEY", backoff_s=0.0))
    assert judge.compare("q", "a good answer", "a poor answer") == "A"
    assert len(FakeAPI.seen) == 3
    FakeAPI.seen, FakeAPI.fail_first = [], 100
    judge = HttpJudge(HttpJudgeConfig(endpoint=server, key_env="GEMKIT_TEST_JUDGE_KEY", backoff_s=0.0, max_retries=1))
    with pytest.raises(JudgeRequestError) as info:
        judge.compare("q", "x", "y")
    assert len(FakeAPI.seen) == 2 and SECRET not in str(info.value) and "HTTP 503" in str(info.value)


def test_http_judge_without_key_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("GEMKIT_NO_SUCH_KEY", raising=False)
    judge = HttpJudge(HttpJudgeConfig(endpoint="http://127.0.0.1:9/v1", key_env="GEMKIT_NO_SUCH_KEY"))
    with pytest.raises(ConfigError, match="GEMKIT_NO_SUCH_KEY"):
        judge.compare("q", "a", "b")


def test_local_judge_returns_a_verdict(tiny_bundle):
    verdict = LocalJudge(bundle=tiny_bundle).compare("What is 2+2?", "4", "five")
    assert verdict in ("A", "B", "tie")
