/*
 * finch_benchmarks.h - published benchmarks read in their own formats
 * (SQuAD v2's dev-v2.0.json, LongBench's JSONL, RULER's JSONL, any JSONL
 * with a field mapping) and their metrics exactly as the benchmarks'
 * evaluation code defines them.  docs/benchmarks.md describes the formats,
 * the prompts and every metric with the source function it follows.
 */
#ifndef FINCH_BENCHMARKS_H
#define FINCH_BENCHMARKS_H

#include "finch_eval.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------- metrics */

/* SQuAD v2 (evaluate-v2.0.py): compute_exact and compute_f1 maximised over
 * the gold answers whose normalised text is not empty; none left (an
 * unanswerable question) scores against "" (so only an empty prediction is
 * right).  f1 is the official value: 1 when both sides have no token. */
void finch_squad2_item(const char *pred, const char *const *answers, size_t n, double *exact, double *f1);

/* LongBench metrics.py, English metrics (ASCII rules as finch_eval_normalize):
 *   qa_f1_score: token F1 of the normalised strings, 0 when nothing common;
 *   rouge_score: the `rouge` package's ROUGE-L F (summary level, sentences
 *     split on '.', words on ' ', union-LCS over word sets), 0 when either
 *     side has no sentence (the exception LongBench catches);
 *   classification_score: 1/len(matches) when the gold class is among the
 *     classes found in pred (after LongBench's removal loop), else 0;
 *   retrieval_score / count_score: share of the digit runs in pred equal to
 *     the gold number ("Paragraph N" for retrieval);
 *   code_sim_score: fuzz.ratio(first code line of pred, gold) / 100. */
double finch_lb_qa_f1(const char *pred, const char *gold);
double finch_lb_rouge_l(const char *pred, const char *gold);
double finch_lb_classification(const char *pred, const char *gold, const char *const *classes, size_t n);
double finch_lb_retrieval(const char *pred, const char *gold);
double finch_lb_retrieval_zh(const char *pred, const char *gold); /* "段落N" */
double finch_lb_count(const char *pred, const char *gold);
double finch_lb_code_sim(const char *pred, const char *gold);

/* LongBench's Chinese metrics (qa_f1_zh_score: multifieldqa_zh;
 * rouge_zh_score: dureader, vcsum) segment words with jieba.cut(text,
 * cut_all=False), which is Python: the caller registers a segmenter
 * (finch score/eval --jieba CMD run tools/jieba_cut.py) that gives the
 * words of a text (malloc'ed array of malloc'ed strings, freed with
 * finch_words_free); NULL unregisters.  Without one, the reader refuses
 * those datasets.  qa_f1_zh: token F1 of the words after
 * normalize_zh_answer (finch_lb_normalize_zh), empty ones dropped, 0 when
 * nothing is common; rouge_zh: rouge_l of the words joined by " ".  NAN
 * when the segmenter fails or is missing (finch_last_error says why). */
typedef finch_status (*finch_segment_fn)(void *user, const char *text, char ***words, size_t *n);
void finch_bench_set_segmenter(finch_segment_fn fn, void *user);
bool finch_bench_has_segmenter(void);
void finch_words_free(char **words, size_t n);
char *finch_lb_normalize_zh(const char *text); /* malloc'ed; NULL when out of memory */
double finch_lb_qa_f1_zh_words(const char *const *pred, size_t np, const char *const *gold, size_t ng);
double finch_lb_qa_f1_zh(const char *pred, const char *gold);
double finch_lb_rouge_zh(const char *pred, const char *gold);

/* fuzzywuzzy's fuzz.ratio with python-Levenshtein: 100 for equal strings,
 * 0 when either is empty, else round-half-even(100 * (l - d) / l), l the
 * summed lengths in code points and d the edit distance with substitution
 * costing 2 (Levenshtein.ratio).  -1 when out of memory. */
int finch_fuzz_ratio(const char *a, const char *b);

/* RULER (scripts/eval/synthetic/constants.py), one item, in [0, 1]:
 * string_match_all: the share of refs found (case-insensitive substring) in
 * pred; string_match_part: 1 when any is found. */
double finch_ruler_match_all(const char *pred, const char *const *refs, size_t n);
double finch_ruler_match_part(const char *pred, const char *const *refs, size_t n);

/* ---------------------------------------------------------- benchmarks */

typedef enum {
    FINCH_BENCH_AUTO = 0, /* detect from the file (finch_bench_read)           */
    FINCH_BENCH_JSONL,    /* {id, context, question, answers} or --fields       */
    FINCH_BENCH_SQUAD2,   /* dev-v2.0.json                                      */
    FINCH_BENCH_LONGBENCH,/* LongBench JSONL                                    */
    FINCH_BENCH_RULER,    /* RULER JSONL {index, input, outputs[, answer_prefix]} */
} finch_benchmark;

const char *finch_benchmark_name(finch_benchmark b);
/* "squad2", "longbench", "ruler", "jsonl", "auto". */
finch_status finch_benchmark_parse(const char *s, finch_benchmark *b);

/* The metric an item is scored with (by its benchmark and dataset). */
typedef enum {
    FINCH_METRIC_SQUAD,      /* EM and F1 (squad2, jsonl)            */
    FINCH_METRIC_QA_F1,
    FINCH_METRIC_ROUGE_L,
    FINCH_METRIC_CLASSIFICATION,
    FINCH_METRIC_RETRIEVAL,
    FINCH_METRIC_RETRIEVAL_ZH,
    FINCH_METRIC_COUNT,
    FINCH_METRIC_CODE_SIM,
    FINCH_METRIC_MATCH_ALL,
    FINCH_METRIC_MATCH_PART,
    FINCH_METRIC_QA_F1_ZH,    /* LongBench's jieba-segmented Chinese metrics:   */
    FINCH_METRIC_ROUGE_ZH,    /* need a segmenter (finch_bench_set_segmenter) */
} finch_metric;
const char *finch_metric_name(finch_metric m);

/* LongBench's per-dataset facts (config/dataset2prompt.json,
 * dataset2maxlen.json, eval.py's dataset2metric, pred.py's chat and stop
 * rules); NULL for a dataset not known.  multifieldqa_zh (qa_f1_zh),
 * dureader and vcsum (rouge_zh) segment words with jieba: the reader
 * refuses them by name unless a segmenter is registered. */
typedef struct {
    const char *name;
    const char *prompt;   /* with {context} and {input}               */
    size_t max_new;       /* maximum answer tokens                    */
    finch_metric metric;
    bool chat;            /* pred.py wraps it in the chat template    */
    bool first_line;      /* eval.py scores the first line only       */
    bool stop_newline;    /* pred.py stops decoding at "\n" (samsum)  */
} finch_longbench_dataset;
const finch_longbench_dataset *finch_longbench_find(const char *name);

/* LongBench-E: pred.py --e loads the datasets "X_e", eval.py --e scores
 * each in buckets of the items' `length` (scorer_e).  finch_longbench_find
 * ("X_e") gives X's facts; finch_longbench_is_e tells such a name.  The
 * reader scores items of an "X_e" dataset by bucket (their `length`
 * required); finch_longbench_mark_e does so for every item of a LongBench
 * file (the --longbench-e flag), refusing an item without a number
 * `length` (FINCH_ERR_FORMAT) or a file of another benchmark
 * (FINCH_ERR_ARG). */
bool finch_longbench_is_e(const char *name);
finch_status finch_longbench_mark_e(finch_eval_tasks *t);

/* Scores of one prediction for item t of its benchmark, in [0, 1]:
 * *score is the benchmark's metric (F1 for SQuAD/JSONL), *exact the SQuAD
 * exact match (NAN for the others). */
void finch_bench_score_item(const finch_eval_task *t, const char *pred, double *score, double *exact);

/* Read a task file of benchmark b (FINCH_BENCH_AUTO: detected; ambiguous
 * or unknown shapes are refused naming the choices).  fields (JSONL only,
 * may be NULL) renames keys: "id=qid,context=passage,question=q,answers=a".
 * Every item gets its benchmark's prompt split at the context (context =
 * the prompt up to and including the context, question = the rest), its
 * maximum answer length, stop rule and metric. */
finch_status finch_bench_read(const char *path, finch_benchmark b, const char *fields, finch_eval_tasks *out);
finch_status finch_bench_parse(const char *text, size_t len, const char *name, finch_benchmark b,
                               const char *fields, finch_eval_tasks *out);

/* ------------------------------------------------------------- scoring */

/* evaluate-v2.0.py without a no-answer probability file: the percentages
 * over all questions, those with answers (HasAns) and those without
 * (NoAns), sums taken in file order as Python 3.11's sum() does.
 * preds[i] is item i's prediction ("" = no answer); a NULL one is refused
 * (the official script would fail on it). */
typedef struct {
    double exact, f1, has_exact, has_f1, no_exact, no_f1;
    size_t total, has_total, no_total;
} finch_squad2_result;
finch_status finch_squad2_evaluate(const finch_eval_tasks *t, const char *const *preds, finch_squad2_result *r);

/* One dataset's score on LongBench's or RULER's scale (a percentage
 * rounded to 2 decimals as Python's round(x, 2)): LongBench
 * round(100 * sum / n, 2), RULER round(sum / n * 100, 2), sums in order. */
enum { FINCH_LONGBENCH_E_BUCKETS = 3 };
typedef struct {
    char name[64];
    finch_metric metric;
    size_t n;
    double sum;   /* of the item scores in [0, 1] */
    double score; /* the benchmark's printed number */
    bool longbench_e; /* scored per length bucket: bucket_n, bucket     */
    size_t bucket_n[FINCH_LONGBENCH_E_BUCKETS];
    double bucket[FINCH_LONGBENCH_E_BUCKETS];
} finch_dataset_score;
/* eval.py scorer_e: the items' scores v[i] in [0, 1] fall in the buckets
 * "0-4k" (length < 4000), "4-8k" (< 8000) and "8k+"; each bucket's score
 * is round(100 * np.mean(scores), 2), np.mean's pairwise summation kept;
 * NAN for an empty bucket (np.mean of an empty list).  FINCH_ERR_NOMEM. */
finch_status finch_longbench_e_scores(const double *v, const double *length, size_t n,
                                      size_t counts[FINCH_LONGBENCH_E_BUCKETS], double score[FINCH_LONGBENCH_E_BUCKETS]);
const char *finch_longbench_e_bucket_name(size_t b); /* "0-4k", "4-8k", "8k+" */
/* Scores of every dataset of t (in the order first seen); *out malloc'ed.
 * LongBench-E datasets also get their bucket scores. */
finch_status finch_bench_dataset_scores(const finch_eval_tasks *t, const char *const *preds,
                                        finch_dataset_score **out, size_t *n);
/* Python's round(x, 2) (half to even on the exact binary value). */
double finch_py_round2(double x);

/* ------------------------------------------------ RULER-style generation */

/* The i-th task name finch_ruler_sample makes (NULL past the last):
 * niah_single_1..3, niah_multikey_1..3, niah_multivalue, niah_multiquery,
 * vt, cwe, fwe.  qa_1 is made by finch_ruler_qa_sample. */
const char *finch_ruler_task_name(size_t i);
/* One RULER-style item of `task` (src/eval/bench_ruler.c says how it differs
 * from RULER's own) of `size` haystack lines (niah, vt) or words (cwe, fwe),
 * from seed: its input (template with the context), answer prefix and
 * expected outputs, all malloc'ed.  length (tokens) only picks cwe's
 * smaller repeats below 4096 and fwe's vocabulary ((length - 50) / 50
 * words, at least 4), as RULER does; fitting the size to the length is the
 * caller's (`finch ruler` bisects it). */
finch_status finch_ruler_sample(const char *task, size_t size, size_t length, uint64_t seed, char **input,
                                char **answer_prefix, char ***outputs, size_t *n_outputs);

/* RULER's qa_1 (scripts/data/synthetic/qa.py, dataset squad): the documents
 * are the distinct paragraphs of a SQuAD v2 file read by finch_bench_read
 * (borrowed: squad must outlive the source), the questions its answerable
 * ones in file order. */
typedef struct finch_ruler_qa_source finch_ruler_qa_source;
finch_status finch_ruler_qa_open(const finch_eval_tasks *squad, finch_ruler_qa_source **out);
void finch_ruler_qa_close(finch_ruler_qa_source *q);
size_t finch_ruler_qa_count(const finch_ruler_qa_source *q); /* answerable questions */
/* Item `index` (question index mod the count) among n_docs documents: the
 * question's own paragraph and n_docs - 1 others drawn from seed (all
 * documents, repeated, when n_docs is not below their number), shuffled,
 * each "Document i:\n" + text, in qa.py's template; answer prefix
 * " Answer:"; outputs: the question's answer texts. */
finch_status finch_ruler_qa_sample(const finch_ruler_qa_source *q, size_t index, size_t n_docs, uint64_t seed,
                                   char **input, char **answer_prefix, char ***outputs, size_t *n_outputs);

#ifdef __cplusplus
}
#endif
#endif /* FINCH_BENCHMARKS_H */
