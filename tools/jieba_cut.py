#!/usr/bin/env python3
"""jieba_cut.py - the Chinese word segmentation of LongBench's metrics for
`finch score --jieba` and `finch eval --jieba` (src/cli/cli_jieba.c):
reads one JSON string per line on stdin and answers each at once with one
line, the JSON array list(jieba.cut(text, cut_all=False)) -- what
LongBench's qa_f1_zh_score and rouge_zh_score call.  Needs jieba (Debian's
python3-jieba 0.42.1; sh tools/deps.sh jieba).

Input and output are UTF-8 whatever the locale.  finch sends valid UTF-8
only (a stray byte is U+FFFD already, src/eval/bench_zh.c); a line that is
not valid UTF-8, not a JSON string, or a string holding a lone surrogate
("\\udcff") is one line on stderr, "jieba_cut.py: line N: ...", and exit 2
(finch then reports that the segmenter gave no answer)."""
import json
import sys


def fail(line_no, what):
    sys.stderr.write("jieba_cut.py: line %d: %s\n" % (line_no, what))
    sys.exit(2)


def text_of(raw, line_no):
    """The str a line holds, or fail naming the problem."""
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        fail(line_no, "not valid UTF-8 (byte 0x%02x at offset %d)" % (raw[e.start], e.start))
    try:
        text = json.loads(line)
    except ValueError as e:
        fail(line_no, "not a JSON string (%s)" % e.msg)
    if not isinstance(text, str):
        fail(line_no, "not a JSON string (a JSON %s)" % type(text).__name__)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        fail(line_no, "a lone surrogate (\\u%04x) is not text" % ord(text[e.start]))
    return text


def main():
    import jieba
    jieba.setLogLevel(60)  # no "Building prefix dict" chatter on stderr
    out = sys.stdout.buffer
    for line_no, raw in enumerate(sys.stdin.buffer, 1):
        words = list(jieba.cut(text_of(raw, line_no), cut_all=False))
        out.write((json.dumps(words, ensure_ascii=False) + "\n").encode("utf-8"))
        out.flush()


if __name__ == "__main__":
    main()
