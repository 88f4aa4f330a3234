#!/usr/bin/env python3
"""jieba_cut.py - the Chinese word segmentation of LongBench's metrics for
`finch score --jieba` and `finch eval --jieba` (src/cli/cli_jieba.c):
reads one JSON string per line on stdin and answers each at once with one
line, the JSON array list(jieba.cut(text, cut_all=False)) -- what
LongBench's qa_f1_zh_score and rouge_zh_score call.  Needs jieba (Debian's
python3-jieba 0.42.1; sh tools/deps.sh jieba)."""
import json
import sys

import jieba

jieba.setLogLevel(60)  # no "Building prefix dict" chatter on stderr
for line in sys.stdin:
    words = list(jieba.cut(json.loads(line), cut_all=False))
    sys.stdout.write(json.dumps(words, ensure_ascii=False) + "\n")
    sys.stdout.flush()
