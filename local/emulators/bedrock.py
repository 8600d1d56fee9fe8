"""Amazon Bedrock Runtime ``Converse``, emulated: deterministic, prompt-derived replies.

No model can run here. The reply is not an echo: it is a Markdown review built from what the prompt
contains (the figures, the JSON objects and the lines that look like findings), with the usage
token counts estimated from the text, ``stopReason`` ``max_tokens`` when ``inferenceConfig.maxTokens``
cuts it, and the validation errors the service returns for malformed requests (empty messages,
conversation not starting with ``user``, roles not alternating, bad model id). The same prompt
always gets the same reply, so tests can assert on it.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import threading
from typing import Any, Final

from botocore.awsrequest import AWSResponse

from local.runner.interceptor import Call, error_reply, reply

_MODEL_ID: Final = re.compile(
    r"(?:arn:aws[a-z-]*:bedrock:[a-z0-9-]*:\d{0,12}:(?:foundation-model|inference-profile|"
    r"application-inference-profile|provisioned-model)/)?(?:[a-z]{2,4}\.)?[a-z0-9-]+\.[A-Za-z0-9.:_-]+"
)
_NUMBER: Final = re.compile(r"(?<![\w.])(-?\d+(?:\.\d+)?)(?![\w.])")


class BedrockEmulator:
    """Install with ``interceptor.add(emulator.hook, service="bedrock-runtime")``."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def hook(self, call: Call) -> AWSResponse | None:
        if call.service != "bedrock-runtime" or call.operation != "Converse":
            return None
        # /model/<modelId>/converse
        match = re.fullmatch(r"/model/(.+)/converse", call.path)
        if not match:
            return None
        model_id = match.group(1)
        try:
            request = call.json()
            response = self.converse(model_id, request)
        except _ValidationError as e:
            return error_reply(call, "ValidationException", str(e), 400)
        with self._lock:
            self.calls.append({"modelId": model_id, "usage": response["usage"], "stopReason": response["stopReason"]})
        return reply(call, 200, response, {"Content-Type": "application/json"})

    def converse(self, model_id: str, request: dict[str, Any]) -> dict[str, Any]:
        if not _MODEL_ID.fullmatch(model_id):
            raise _ValidationError(f"The provided model identifier is invalid: {model_id}")
        messages = request.get("messages")
        if not isinstance(messages, list) or not messages:
            raise _ValidationError(
                "A conversation must start with a user message. "
                "Try again with a conversation that starts with a user message."
            )
        expected = "user"
        texts: list[str] = []
        for message in messages:
            role = message.get("role")
            if role != expected:
                raise _ValidationError(
                    "A conversation must alternate between user and assistant roles. "
                    "Make sure the conversation alternates between user and assistant roles and try again."
                )
            blocks = message.get("content")
            if not isinstance(blocks, list) or not blocks:
                raise _ValidationError(
                    "The content field in the Message object is empty. Add a content block and try again."
                )
            for block in blocks:
                if "text" in block:
                    if not str(block["text"]).strip():
                        raise _ValidationError(
                            "The text field in the ContentBlock object is blank. "
                            "Add text to the text field, and try again."
                        )
                    texts.append(str(block["text"]))
            expected = "assistant" if role == "user" else "user"
        if messages[-1].get("role") != "user":
            raise _ValidationError("The last message in the conversation must be from the user.")
        system = " ".join(str(b.get("text", "")) for b in request.get("system") or [])
        config = request.get("inferenceConfig") or {}
        max_tokens = int(config.get("maxTokens") or 4096)
        if max_tokens < 1:
            raise _ValidationError("maxTokens must be at least 1")
        prompt = "\n".join(texts)
        text = compose_review(prompt)
        input_tokens = estimate_tokens(system) + estimate_tokens(prompt)
        output_tokens = estimate_tokens(text)
        stop_reason = "end_turn"
        if output_tokens > max_tokens:
            words = text.split(" ")
            keep = max(1, int(len(words) * max_tokens / output_tokens))
            text = " ".join(words[:keep])
            output_tokens = max_tokens
            stop_reason = "max_tokens"
        latency = 200 + int(hashlib.sha256(prompt.encode()).hexdigest()[:3], 16) % 800
        return {
            "output": {"message": {"role": "assistant", "content": [{"text": text}]}},
            "stopReason": stop_reason,
            "usage": {
                "inputTokens": input_tokens,
                "outputTokens": output_tokens,
                "totalTokens": input_tokens + output_tokens,
            },
            "metrics": {"latencyMs": latency},
        }


class _ValidationError(Exception):
    pass


def estimate_tokens(text: str) -> int:
    """About 4 characters per token, the rule of thumb model providers give for English text."""
    return math.ceil(len(text) / 4) if text else 0


def compose_review(prompt: str) -> str:
    """A Markdown review derived from the prompt's content."""
    objects = _json_objects(prompt)
    figures = _figures(objects)
    notable = _error_messages(objects) or [
        line.strip(" -*\t")
        for line in prompt.splitlines()
        if re.search(r"(?i)\b(fail|error|invalid|corrupt|truncat|violation|warning|missing)", line)
        and not line.strip().startswith(('"', "{", "[", "}", "]"))
    ]
    notable = notable[:5]
    digest = hashlib.sha256(prompt.encode()).hexdigest()[:8]
    lines = ["# Design review", "", "## Summary", ""]
    if figures:
        lines.append(
            "The submitted data covers "
            + ", ".join(f"{name.replace('_', ' ')} {value}" for name, value in figures[:6])
            + "."
        )
    else:
        numbers = _NUMBER.findall(prompt)[:6]
        lines.append(
            f"The request contains {len(prompt.split())} words"
            + (f" and the figures {', '.join(numbers)}." if numbers else ".")
        )
    lines += ["", "## Findings", ""]
    if notable:
        lines += [f"- {item[:200]}" for item in notable]
    failed = next((v for k, v in figures if "fail" in k), None)
    if failed not in (None, 0, "0"):
        lines.append(f"- {failed} item(s) could not be processed and need attention before sign-off.")
    if not notable and failed in (None, 0, "0"):
        lines.append("- No failures or rule violations are reported in the supplied data.")
    lines += [
        "",
        "## Recommendations",
        "",
        "1. Re-run the checks on any file reported as failed or truncated.",
        "2. Compare the cell counts and units against the previous tape-out.",
        f"3. Keep this review with run reference {digest}.",
    ]
    return "\n".join(lines)


def _json_objects(text: str) -> list[Any]:
    decoder = json.JSONDecoder()
    found: list[Any] = []
    index = 0
    while True:
        start = min((i for i in (text.find("{", index), text.find("[", index)) if i >= 0), default=-1)
        if start < 0:
            return found
        try:
            value, end = decoder.raw_decode(text, start)
        except json.JSONDecodeError:
            index = start + 1
            continue
        found.append(value)
        index = end


def _error_messages(objects: list[Any]) -> list[str]:
    """``error_message``/``errorMessage`` values found in the prompt's JSON objects."""
    found: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                if key in {"error_message", "errorMessage"} and isinstance(inner, str):
                    found.append(inner)
                else:
                    walk(inner)
        elif isinstance(value, list):
            for inner in value:
                walk(inner)

    for obj in objects:
        walk(obj)
    return found


def _figures(objects: list[Any]) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []

    def walk(value: Any, prefix: str) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                walk(inner, f"{prefix}{key}" if not prefix else f"{prefix}.{key}")
        elif isinstance(value, int | float) and not isinstance(value, bool):
            out.append((prefix.rsplit(".", 1)[-1], value))

    for obj in objects:
        walk(obj, "")
    return out
