/* cli_jieba.c - --jieba CMD of `finch score` and `finch eval`: LongBench's
 * Chinese metrics segment words with jieba (Python), so a helper process
 * does it (tools/jieba_cut.py with Debian's python3-jieba): CMD runs under
 * /bin/sh, reads one JSON string a line on its stdin and answers each with
 * one line, the JSON array of jieba.cut(text, cut_all=False).  It is
 * registered with the library (finch_bench_set_segmenter) before the task
 * file is read, so the datasets it scores are no longer refused. */
#include "cli.h"
#include "finch_benchmarks.h"
#include "util.h"

#include <cjson/cJSON.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static struct {
    pid_t pid;
    FILE *to, *from;
    char *line;
    size_t cap;
} g_jieba = { .pid = -1 };

/* One text out, its words back. */
static finch_status segment(void *user, const char *text, char ***words, size_t *n) {
    (void)user;
    *words = NULL;
    *n = 0;
    cJSON *s = cJSON_CreateString(text);
    char *out = s ? cJSON_PrintUnformatted(s) : NULL;
    cJSON_Delete(s);
    bool sent = out && fprintf(g_jieba.to, "%s\n", out) >= 0 && fflush(g_jieba.to) == 0;
    free(out);
    if (!sent) return finch_fail(FINCH_ERR_IO, "the segmenter does not read its input (it exited?)");
    if (getline(&g_jieba.line, &g_jieba.cap, g_jieba.from) < 0)
        return finch_fail(FINCH_ERR_IO, "the segmenter gave no answer (it exited?)");
    cJSON *a = cJSON_Parse(g_jieba.line), *w;
    if (!cJSON_IsArray(a)) {
        cJSON_Delete(a);
        return finch_fail(FINCH_ERR_FORMAT, "the segmenter's answer is not a JSON array of strings");
    }
    *words = calloc((size_t)cJSON_GetArraySize(a) + 1, sizeof **words);
    finch_status st = *words ? FINCH_OK : finch_fail(FINCH_ERR_NOMEM, "out of memory segmenting");
    cJSON_ArrayForEach(w, a) {
        if (st) break;
        if (!cJSON_IsString(w)) st = finch_fail(FINCH_ERR_FORMAT, "the segmenter's answer is not a JSON array of strings");
        else if (!((*words)[(*n)++] = strdup(w->valuestring))) st = finch_fail(FINCH_ERR_NOMEM, "out of memory segmenting");
    }
    cJSON_Delete(a);
    if (st) { finch_words_free(*words, *n); *words = NULL; *n = 0; }
    return st;
}

int cli_jieba_start(const char *cmd) {
    if (!cmd) return 0;
    int in[2], out[2];
    if (pipe(in) || pipe(out)) return cli_error("--jieba: cannot make pipes");
    pid_t pid = fork();
    if (pid < 0) return cli_error("--jieba: cannot start '%s'", cmd);
    if (pid == 0) { /* the helper: our pipes as its stdin and stdout */
        dup2(in[0], 0);
        dup2(out[1], 1);
        close(in[0]); close(in[1]); close(out[0]); close(out[1]);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    signal(SIGPIPE, SIG_IGN); /* a segmenter that died is an error message, not a killed finch */
    g_jieba.pid = pid;
    g_jieba.to = fdopen(in[1], "w");
    g_jieba.from = fdopen(out[0], "r");
    if (!g_jieba.to || !g_jieba.from) return cli_error("--jieba: cannot open the pipes");
    finch_bench_set_segmenter(segment, NULL);
    char **w = NULL; /* one word first: a command that cannot segment is refused before any work */
    size_t n = 0;
    finch_status st = segment(NULL, "测试", &w, &n);
    finch_words_free(w, n);
    if (st) {
        cli_jieba_stop();
        return cli_error("--jieba '%s': %s", cmd, finch_last_error());
    }
    return 0;
}

void cli_jieba_stop(void) {
    if (g_jieba.pid < 0) return;
    finch_bench_set_segmenter(NULL, NULL);
    if (g_jieba.to) fclose(g_jieba.to); /* end of input: the helper exits */
    if (g_jieba.from) fclose(g_jieba.from);
    waitpid(g_jieba.pid, NULL, 0);
    free(g_jieba.line);
    memset(&g_jieba, 0, sizeof g_jieba);
    g_jieba.pid = -1;
}
