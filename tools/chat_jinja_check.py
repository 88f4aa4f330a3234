#!/usr/bin/python3
"""chat_jinja_check.py - finch's built-in chat formats against the models'
own Jinja templates (docs/chat-templates.md, "Against the Jinja templates").

For every *.jinja file of a directory (e.g. llama.cpp's models/templates)
whose text finch recognises, render [system?, user: MARK] with
add_generation_prompt as Hugging Face does (jinja2 sandbox, trim_blocks,
lstrip_blocks; BOS dropped from the front) and compare the text before and
after MARK with finch_chat_split's head and tail, with and without a system
prompt.  Prints SAME / DIFF per template and a count.

Needs python3-jinja2 (Debian) and build/libfinch.a; a tiny C helper is
compiled into /tmp.  Usage:
  /usr/bin/python3 tools/chat_jinja_check.py DIR_OF_JINJA_FILES
"""

import datetime
import glob
import json
import os
import subprocess
import sys
import tempfile

from jinja2.sandbox import ImmutableSandboxedEnvironment

HELPER = r"""
#include "finch_chat.h"
#include "util.h"
#include <stdio.h>
#include <stdlib.h>
int main(int argc, char **argv) {
    const char *sys = argv[1][0] ? argv[1] : NULL;
    for (int i = 2; i < argc; i++) {
        char *t, *h, *tl;
        size_t n;
        finch_chat_format f;
        if (finch_read_file(argv[i], &t, &n)) continue;
        if (finch_chat_detect(t, &f) == FINCH_OK && finch_chat_split(f, sys, &h, &tl) == FINCH_OK) {
            printf("%s\x1e%s\x1e%s\x1e%s\x1d", argv[i], finch_chat_format_name(f), h, tl);
            free(h);
            free(tl);
        }
        free(t);
    }
    return 0;
}
"""

MARK = "XXFINCHXX"


def helper_binary(root):
    d = tempfile.mkdtemp(prefix="finch-chat-check-")
    src, exe = os.path.join(d, "split.c"), os.path.join(d, "split")
    with open(src, "w") as f:
        f.write(HELPER)
    subprocess.check_call(["cc", "-std=c11", "-D_GNU_SOURCE", "-I" + os.path.join(root, "include"),
                           "-I" + os.path.join(root, "src"), src, os.path.join(root, "build/libfinch.a"),
                           "-lcjson", "-lm", "-lopenblas", "-pthread", "-o", exe])
    return exe


def jinja_env():
    def raise_exception(msg):
        raise ValueError(msg)
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=["jinja2.ext.loopcontrols"])
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = lambda fmt: datetime.datetime(2024, 7, 26).strftime(fmt)
    env.filters["tojson"] = lambda x, indent=None, ensure_ascii=False: json.dumps(
        x, indent=indent, ensure_ascii=ensure_ascii)
    return env


def main(argv):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    files = sorted(glob.glob(os.path.join(argv[0], "*.jinja")))
    exe, env = helper_binary(root), jinja_env()
    same = differ = failed = 0
    for system in ["", "Be brief."]:
        out = subprocess.run([exe, system] + files, capture_output=True, check=True).stdout.decode()
        for rec in filter(None, out.split("\x1d")):
            path, fmt, head, tail = rec.split("\x1e")
            msgs = ([{"role": "system", "content": system}] if system else []) + \
                [{"role": "user", "content": MARK}]
            name = os.path.basename(path)
            try:
                text = env.from_string(open(path).read()).render(
                    messages=msgs, add_generation_prompt=True, bos_token="<s>", eos_token="</s>", tools=None)
            except Exception as e:  # a template that needs more than this context
                print(f"FAIL {name}: {e}")
                failed += 1
                continue
            for bos in ("<s>", "<|begin_of_text|>", "<bos>"):
                if text.startswith(bos):
                    text = text[len(bos):]
            h, _, t = text.partition(MARK)
            if (h, t) == (head, tail):
                same += 1
                print(f"SAME {fmt:18} system={bool(system)!s:5} {name}")
            else:
                differ += 1
                print(f"DIFF {fmt:18} system={bool(system)!s:5} {name}\n  jinja {h!r:.160} | {t!r}\n"
                      f"  finch {head!r:.160} | {tail!r}")
    print(f"{same} same, {differ} differ, {failed} not rendered")


if __name__ == "__main__":
    main(sys.argv[1:])
