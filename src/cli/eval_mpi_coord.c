/* eval_mpi_coord.c - rank 0 of an MPI `finch eval` (MPI=1; docs/mpi.md):
 * hands out the work units, lowest first, to the ranks as they become free;
 * appends every record to DIR/journal.jsonl as it arrives (one JSON line,
 * synced before rank 0 waits again: a crash, a killed rank or a cancelled
 * job loses only the units in flight); puts each item together in task
 * order and writes results.json as the one-process sweep does (at most
 * every SAVE_EVERY_S, and at the end).  --resume reads both files. */
#include "eval_bench.h"
#include "eval_mpi.h"
#include "eval_report.h"
#include "util.h"

#include <errno.h>
#include <mpi.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { UNIT_OPEN, UNIT_ASSIGNED, UNIT_DONE };
/* results.json is rewritten at most this often (and at the end): the
 * journal already keeps every record, and a rewrite costs the whole file. */
enum { SAVE_EVERY_S = 10 };

typedef struct {
    cJSON *header;        /* unit 0's record (header + full, or skipped)  */
    cJSON **runs;         /* units 1..: runs[k - 1]                       */
    float *logits;        /* unit 0's logits while press units are open   */
    unsigned char *state; /* per unit: UNIT_OPEN, _ASSIGNED, _DONE        */
    size_t n_runs_done;
    bool before;          /* already in results.json (--resume)           */
} item_state;

typedef struct {
    const eval_env *e;
    const cli_eval_opts *o;
    const finch_eval_tasks *tasks;
    const cJSON *config;
    cJSON *items;
    item_state *it;
    size_t n, n_units, cursor, next_emit, vocab;
    FILE *journal;
    bool journal_dirty, unsaved; /* records not synced; items not in results.json */
    double last_save;
    char journal_path[4096];
    int *idle, n_idle, n_workers, n_stopped, in_flight, rc, size;
    size_t *given;        /* units handed to each rank (--progress)      */
    double t0, last_emit; /* --progress: the ETA line                     */
    size_t emitted, to_emit; /* items emitted in this process, of to_emit */
} coord;

static bool skipped(const cJSON *header) { return cJSON_GetObjectItemCaseSensitive(header, "skipped") != NULL; }

static bool item_complete(const coord *c, const item_state *s) {
    return s->before || (s->header && (skipped(s->header) || s->n_runs_done == c->n_units - 1));
}

static void item_clear(coord *c, item_state *s) {
    cJSON_Delete(s->header);
    for (size_t k = 0; s->runs && k + 1 < c->n_units; k++) cJSON_Delete(s->runs[k]);
    free(s->runs);
    free(s->logits);
    free(s->state);
    memset(s, 0, sizeof *s);
}

static void coord_free(coord *c) {
    for (size_t i = 0; c->it && i < c->n; i++) item_clear(c, &c->it[i]);
    free(c->it);
    free(c->idle);
    free(c->given);
    if (c->journal) fclose(c->journal);
}

/* "item 'x', unit 3: press snapkv at ratio 8": what a unit is, for messages. */
static void unit_name(const coord *c, size_t i, size_t k, char *buf, size_t cap) {
    const cli_eval_opts *o = c->o;
    if (k == 0) snprintf(buf, cap, "item '%.64s', unit 0: the full reference", c->tasks->items[i].id);
    else
        snprintf(buf, cap, "item '%.64s', unit %zu: press %s at ratio %g", c->tasks->items[i].id, k,
                 finch_scorer_name(o->presses[(k - 1) / o->n_ratios]), o->ratios[(k - 1) % o->n_ratios]);
}

static int coord_init(coord *c, int size, bool root_works) {
    c->n = c->o->limit && (size_t)c->o->limit < c->tasks->n ? (size_t)c->o->limit : c->tasks->n;
    c->n_units = eval_units_per_item(c->o);
    c->vocab = c->e->m->cfg.vocab;
    c->n_workers = root_works ? size : size - 1;
    c->it = calloc(c->n ? c->n : 1, sizeof *c->it);
    c->idle = calloc((size_t)size, sizeof *c->idle);
    c->given = calloc((size_t)size, sizeof *c->given);
    c->size = size;
    if (!c->it || !c->idle || !c->given) return cli_out_of_memory();
    for (size_t i = 0; i < c->n; i++) {
        item_state *s = &c->it[i];
        s->before = eval_item_done(c->items, c->tasks->items[i].id);
        if (s->before) continue;
        s->state = calloc(c->n_units, 1);
        s->runs = calloc(c->n_units, sizeof *s->runs);
        if (!s->state || !s->runs) return cli_out_of_memory();
    }
    c->t0 = c->last_save = finch_now();
    return 0;
}

/* --------------------------------------------------------------- journal */

/* Keep record rec of unit k of item i (taken over); false if it is not
 * one (a journal line from elsewhere, or a record of no use). */
static bool keep_record(coord *c, size_t i, size_t k, cJSON *rec) {
    item_state *s = &c->it[i];
    bool ok = cJSON_IsObject(rec) && k < c->n_units && !s->before && s->state[k] != UNIT_DONE;
    if (ok && k == 0) s->header = rec;
    else if (ok && s->header && skipped(s->header)) ok = false;
    else if (ok) {
        s->runs[k - 1] = rec;
        s->n_runs_done++;
    }
    if (!ok) return false;
    s->state[k] = UNIT_DONE;
    if (k == 0 && skipped(rec))
        for (size_t u = 1; u < c->n_units; u++) s->state[u] = UNIT_DONE;
    return true;
}

static long find_item(const coord *c, const char *id) {
    for (size_t i = 0; i < c->n; i++)
        if (!strcmp(c->tasks->items[i].id, id)) return (long)i;
    return -1;
}

/* One journal line {"item", "unit", "record"}; false when it is not one.
 * A line of an item beyond --limit stays in the file unused; a unit kept
 * already, or of an item saved, adds nothing. */
static bool load_line(coord *c, const char *line) {
    cJSON *j = cJSON_Parse(line);
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(j, "item"), *u = cJSON_GetObjectItemCaseSensitive(j, "unit");
    cJSON *rec = cJSON_DetachItemFromObjectCaseSensitive(j, "record");
    bool ok = cJSON_IsString(id) && cJSON_IsNumber(u) && u->valuedouble >= 0 &&
              u->valuedouble < (double)c->n_units && u->valuedouble == (double)(size_t)u->valuedouble &&
              cJSON_IsObject(rec);
    long i = ok ? find_item(c, id->valuestring) : -1;
    if (i < 0 || !keep_record(c, (size_t)i, (size_t)u->valuedouble, rec)) cJSON_Delete(rec);
    cJSON_Delete(j);
    return ok;
}

/* Press units need their item's full logits, which the journal does not
 * keep: an item with open press units runs its unit 0 again. */
static void reopen_full_units(coord *c) {
    for (size_t i = 0; i < c->n; i++) {
        item_state *s = &c->it[i];
        if (s->before || !s->header || item_complete(c, s)) continue;
        cJSON_Delete(s->header);
        s->header = NULL;
        s->state[0] = UNIT_OPEN;
    }
}

/* --resume: the records of DIR/journal.jsonl (made with the same settings);
 * a torn last line (a crash mid-write) is cut off.  *kept: the file keeps
 * at least its first line, the settings, and is appended to. */
static int journal_load(coord *c, bool *kept) {
    char *text = NULL;
    size_t len, good = 0;
    *kept = false;
    if (finch_read_file(c->journal_path, &text, &len)) return 0; /* no journal: nothing to add */
    int rc = 0;
    size_t line_no = 0;
    for (size_t at = 0; at < len && !rc; line_no++) {
        char *nl = memchr(text + at, '\n', len - at);
        if (!nl) break; /* torn */
        *nl = 0;
        if (line_no == 0) {
            cJSON *j = cJSON_Parse(text + at), *cfg = cJSON_GetObjectItemCaseSensitive(j, "config");
            eval_config_upgrade(cfg); /* a journal of an earlier build resumes as its results.json does */
            if (!cJSON_Compare(cfg, c->config, true))
                rc = cli_error("--resume: %s was made with other settings (model, task, presses, ratios, mode, "
                               "...); use another --out", c->journal_path);
            cJSON_Delete(j);
        } else if (!load_line(c, text + at)) {
            rc = cli_error("--resume: %s:%zu: not a journal line of finch eval", c->journal_path, line_no + 1);
        }
        at = (size_t)(nl - text) + 1;
        good = at;
    }
    free(text);
    if (!rc && good < len && truncate(c->journal_path, (off_t)good) != 0)
        rc = cli_error("--resume: cannot cut the torn last line of %s: %s", c->journal_path, strerror(errno));
    *kept = good > 0;
    if (!rc) reopen_full_units(c);
    return rc;
}

/* A record goes to the stdio buffer; journal_sync writes and syncs all that
 * came in together (one fsync per batch, not per row: rank 0 must keep up
 * with hundreds of ranks). */
static int journal_write(coord *c, const char *line) {
    c->journal_dirty = true;
    if (fputs(line, c->journal) < 0 || fputc('\n', c->journal) < 0)
        return cli_error("cannot write %s: %s", c->journal_path, strerror(errno));
    return 0;
}

static int journal_sync(coord *c) {
    if (!c->journal_dirty) return 0;
    c->journal_dirty = false;
    if (fflush(c->journal) != 0 || fsync(fileno(c->journal)) != 0)
        return cli_error("cannot write %s: %s", c->journal_path, strerror(errno));
    return 0;
}

static int journal_open(coord *c) {
    snprintf(c->journal_path, sizeof c->journal_path, "%s/journal.jsonl", c->o->out);
    bool kept = false;
    int rc = c->o->resume ? journal_load(c, &kept) : 0;
    if (rc) return rc;
    bool fresh = !kept;
    c->journal = fopen(c->journal_path, fresh ? "w" : "a");
    if (!c->journal) return cli_error("cannot write %s: %s", c->journal_path, strerror(errno));
    if (!fresh) return 0;
    cJSON *head = cJSON_CreateObject();
    char *line = NULL;
    if (head && cJSON_AddItemReferenceToObject(head, "config", (cJSON *)c->config))
        line = cJSON_PrintUnformatted(head);
    rc = line ? journal_write(c, line) : cli_out_of_memory();
    free(line);
    cJSON_Delete(head);
    return rc ? rc : journal_sync(c);
}

/* ------------------------------------------------------- records, items */

/* results.json with the items so far, when SAVE_EVERY_S have passed. */
static int save_items(coord *c, bool now) {
    if (!c->unsaved || (!now && finch_now() - c->last_save < SAVE_EVERY_S)) return 0;
    c->unsaved = false;
    c->last_save = finch_now();
    return eval_save(c->o, c->config, c->items);
}

/* Items complete from next_emit on, in task order: into the results. */
static int emit_items(coord *c) {
    for (; c->next_emit < c->n && item_complete(c, &c->it[c->next_emit]); c->next_emit++) {
        item_state *s = &c->it[c->next_emit];
        if (s->before) continue;
        bool sk = skipped(s->header);
        if (!sk) eval_item_assemble(s->header, s->runs, c->n_units - 1);
        int rc = eval_dump_task(c->e, &c->tasks->items[c->next_emit], s->header);
        if (rc) return rc;
        cJSON_AddItemToArray(c->items, s->header);
        s->header = NULL;
        c->unsaved = true;
        if (c->o->progress) { /* as the one-process sweep: the time since the last item, elapsed, ETA */
            if (!c->emitted) {
                c->last_emit = c->t0;
                for (size_t i = c->next_emit; i < c->n; i++) c->to_emit += !c->it[i].before;
            }
            double now = finch_now();
            c->emitted++;
            eval_progress_line(stderr, c->next_emit + 1, c->n, c->tasks->items[c->next_emit].id, sk,
                               now - c->last_emit, now - c->t0, c->emitted, c->to_emit - c->emitted);
            c->last_emit = now;
        }
        item_clear(c, s);
        s->before = true; /* in the results */
    }
    return save_items(c, c->next_emit == c->n);
}

/* A worker's DONE: journal the record, keep it, put items together. */
static int take_record(coord *c, const msg *m) {
    size_t i = (size_t)m->h.item, k = (size_t)m->h.unit;
    char what[256];
    unit_name(c, i, k, what, sizeof what);
    cJSON *rec = m->text ? cJSON_Parse(m->text) : NULL;
    bool needs_logits = rec && k == 0 && !skipped(rec);
    if (!rec || (needs_logits && m->n_floats != c->vocab)) {
        cJSON_Delete(rec);
        return cli_error("rank %d sent a broken record (%s)", m->source, what);
    }
    cJSON *line = cJSON_CreateObject();
    cJSON_AddStringToObject(line, "item", c->tasks->items[i].id);
    cJSON_AddNumberToObject(line, "unit", (double)k);
    cJSON_AddItemReferenceToObject(line, "record", rec);
    char *text = cJSON_PrintUnformatted(line);
    cJSON_Delete(line);
    int rc = text ? journal_write(c, text) : cli_out_of_memory();
    free(text);
    if (!rc && needs_logits) {
        item_state *s = &c->it[i];
        if (!(s->logits = malloc(c->vocab * sizeof(float)))) rc = cli_out_of_memory();
        else memcpy(s->logits, m->floats, c->vocab * sizeof(float));
    }
    if (rc || !keep_record(c, i, k, rec)) cJSON_Delete(rec);
    return rc ? rc : emit_items(c);
}

/* ---------------------------------------------------------- scheduling */

/* The lowest open unit that can run now: unit 0 of an item, or a press
 * unit of an item whose full logits are here. */
static bool next_unit(coord *c, size_t *item, size_t *unit) {
    while (c->cursor < c->n) { /* items with every unit handed out are passed for good */
        const item_state *s = &c->it[c->cursor];
        if (s->before || !s->state || !memchr(s->state, UNIT_OPEN, c->n_units)) c->cursor++;
        else break;
    }
    for (size_t i = c->cursor; i < c->n; i++) {
        const item_state *s = &c->it[i];
        if (s->before || !s->state) continue;
        if (s->state[0] == UNIT_OPEN) return *item = i, *unit = 0, true;
        if (!s->logits) continue;
        const unsigned char *open = memchr(s->state + 1, UNIT_OPEN, c->n_units - 1);
        if (open) return *item = i, *unit = (size_t)(open - s->state), true;
    }
    return false;
}

/* Give the idle workers units, or stop them when the job is over. */
static void dispatch(coord *c) {
    while (c->n_idle > 0) {
        int w = c->idle[c->n_idle - 1];
        size_t i, k;
        if (c->rc || c->next_emit == c->n) {
            msg_send(w, TAG_TO_WORKER, (msg_head){ .kind = MSG_STOP, .rc = c->rc }, NULL, NULL, 0);
            c->n_stopped++;
        } else if (next_unit(c, &i, &k)) {
            item_state *s = &c->it[i];
            s->state[k] = UNIT_ASSIGNED;
            msg_head h = { .kind = MSG_WORK, .item = (int64_t)i, .unit = (int64_t)k };
            msg_send(w, TAG_TO_WORKER, h, NULL, k ? s->logits : NULL, k ? c->vocab : 0);
            c->in_flight++;
            c->given[w]++;
        } else if (c->in_flight == 0) { /* cannot happen; stop rather than wait for ever */
            c->rc = cli_error("internal: no unit can run and none is running (%zu of %zu items saved)",
                              c->next_emit, c->n);
            continue;
        } else {
            return; /* the waiting units need a full reference in flight */
        }
        c->n_idle--;
    }
}

/* One message from a worker; the first failure becomes the job's. */
static void handle(coord *c, const msg *m) {
    char what[256];
    if (m->h.kind == MSG_DONE || m->h.kind == MSG_FAIL) {
        c->in_flight--;
        if (m->h.item < 0 || (size_t)m->h.item >= c->n || m->h.unit < 0 || (size_t)m->h.unit >= c->n_units) {
            if (!c->rc) c->rc = cli_error("rank %d answered a unit it was not given", m->source);
        } else if (m->h.kind == MSG_FAIL && !c->rc) {
            unit_name(c, (size_t)m->h.item, (size_t)m->h.unit, what, sizeof what);
            /* the unit's own message first, as one process prints it */
            cli_error("%s (rank %d, %s)", m->text ? m->text : "failed without a message", m->source, what);
            c->rc = m->h.rc ? m->h.rc : EXIT_INTERNAL;
        } else if (m->h.kind == MSG_DONE) {
            int rc = take_record(c, m); /* kept even when stopping: nothing done is lost */
            if (rc && !c->rc) c->rc = rc;
        }
    }
    c->idle[c->n_idle++] = m->source;
}

/* --progress: how the units went, so an unbalanced job shows. */
static void report_ranks(const coord *c, bool root_works) {
    char line[1024];
    size_t at = 0, total = 0;
    for (int r = 0; r < c->size; r++) total += c->given[r];
    for (int r = root_works ? 0 : 1; r < c->size && at < sizeof line - 48; r++)
        at += (size_t)snprintf(line + at, sizeof line - at, "%s%d: %zu", at ? ", " : "", r, c->given[r]);
    fprintf(stderr, "finch eval: %zu units on %d ranks (%s), %.2f s; units by rank: %s%s\n", total, c->n_workers,
            root_works ? "rank 0 works and coordinates" : "rank 0 coordinates", finch_now() - c->t0, line,
            at >= sizeof line - 48 ? ", ..." : "");
}

int eval_mpi_coordinate(const eval_env *e, const finch_eval_tasks *tasks, const cJSON *config, cJSON *items,
                        int size, bool root_works) {
    coord c = { .e = e, .o = e->o, .tasks = tasks, .config = config, .items = items };
    int rc = coord_init(&c, size, root_works);
    if (!rc) rc = journal_open(&c);
    if (!rc) rc = emit_items(&c); /* items the journal completed */
    c.rc = rc;
    while (c.n_stopped < c.n_workers) {
        msg m;
        msg_recv(MPI_ANY_SOURCE, TAG_TO_ROOT, &m);
        do { /* and every message that came meanwhile */
            handle(&c, &m);
            msg_free(&m);
        } while (msg_poll(MPI_ANY_SOURCE, TAG_TO_ROOT, &m, false));
        dispatch(&c);
        int src = c.journal ? journal_sync(&c) : 0; /* after dispatch: the workers do not wait for it */
        if (src && !c.rc) c.rc = src;
    }
    int src = save_items(&c, true); /* also after a failure: what is done shows */
    rc = c.rc ? c.rc : src;
    if (c.o->progress && c.given) report_ranks(&c, root_works);
    if (c.journal && fclose(c.journal) != 0 && !rc) rc = cli_error("cannot write %s", c.journal_path);
    c.journal = NULL;
    if (!rc) remove(c.journal_path); /* everything is in results.json */
    coord_free(&c);
    return rc;
}
