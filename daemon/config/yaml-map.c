/* yaml-map.c — a pass over libyaml's events recording where every node is.
 *
 * libcyaml reports positions of the last event it read, which for "unknown key" or
 * "missing key" errors is not the key at fault, and qlab's own value checks run after
 * loading, when positions are gone. This map gives each node a path ("sweep.bits[2]")
 * and its line and column, so any error can point at its exact place. It also catches
 * YAML syntax errors first, with libyaml's own position of the problem. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "experiment-private.h"

#define MAX_DEPTH 64
#define MAX_NODES 200000

typedef struct frame {
    char *path;
    int is_map;
    int want_key;               /* mappings: the next scalar is a key */
    char *key;
    int key_line, key_col;
    size_t index;               /* sequences: next entry */
} frame;

static int add_node(qlab_ymap *m, char *path, qlab_ynode_kind kind, const yaml_event_t *ev,
                    int key_line, int key_col)
{
    if (m->n == MAX_NODES)
        return -E2BIG;
    if (m->n == m->cap) {
        size_t cap = m->cap ? 2 * m->cap : 64;
        qlab_ynode *nn = realloc(m->nodes, cap * sizeof *nn);
        if (!nn)
            return -ENOMEM;
        m->nodes = nn;
        m->cap = cap;
    }
    qlab_ynode *n = &m->nodes[m->n];
    memset(n, 0, sizeof *n);
    n->path = path;
    n->kind = kind;
    n->line = (int)ev->start_mark.line + 1;
    n->col = (int)ev->start_mark.column + 1;
    n->key_line = key_line ? key_line : n->line;
    n->key_col = key_line ? key_col : n->col;
    if (kind == QLAB_YNODE_SCALAR) {
        n->value = strndup((const char *)ev->data.scalar.value, ev->data.scalar.length);
        if (!n->value)
            return -ENOMEM;
        n->quoted = ev->data.scalar.style == YAML_SINGLE_QUOTED_SCALAR_STYLE ||
                    ev->data.scalar.style == YAML_DOUBLE_QUOTED_SCALAR_STYLE;
    }
    m->n++;
    return 0;
}

/* Path of the node that the event on top of `top` starts, and its key position. */
static char *child_path(frame *top, int *kl, int *kc)
{
    char *p = NULL;
    if (!top) {
        *kl = *kc = 0;
        return strdup("");
    }
    if (top->is_map) {
        *kl = top->key_line;
        *kc = top->key_col;
        if (asprintf(&p, "%s%s%s", top->path, top->path[0] ? "." : "", top->key) < 0)
            p = NULL;
        free(top->key);
        top->key = NULL;
        top->want_key = 1;
    } else {
        *kl = *kc = 0;
        if (asprintf(&p, "%s[%zu]", top->path, top->index) < 0)
            p = NULL;
        top->index++;
    }
    return p;
}

static int syntax_error(yaml_parser_t *p, const char *file, qlab_err *err)
{
    const yaml_mark_t *mk = p->problem ? &p->problem_mark : &p->mark;
    if (p->context)
        return qlab_err_set(err, -EINVAL, "%s:%zu:%zu: %s %s", file, mk->line + 1,
                            mk->column + 1, p->problem ? p->problem : "syntax error",
                            p->context);
    return qlab_err_set(err, -EINVAL, "%s:%zu:%zu: %s", file, mk->line + 1, mk->column + 1,
                        p->problem ? p->problem : "syntax error");
}

int qlab_ymap_build(qlab_ymap *m, const char *buf, size_t len, const char *file,
                    qlab_err *err)
{
    yaml_parser_t parser;
    frame stack[MAX_DEPTH];
    int depth = 0, r = 0, done = 0, docs = 0;
    memset(m, 0, sizeof *m);
    if (!yaml_parser_initialize(&parser))
        return qlab_err_set(err, -ENOMEM, "%s: out of memory", file);
    yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
    while (!done && r == 0) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&parser, &ev)) {
            r = syntax_error(&parser, file, err);
            break;
        }
        frame *top = depth ? &stack[depth - 1] : NULL;
        int line = (int)ev.start_mark.line + 1, col = (int)ev.start_mark.column + 1;
        switch (ev.type) {
        case YAML_STREAM_END_EVENT:
            done = 1;
            break;
        case YAML_DOCUMENT_START_EVENT:
            if (++docs > 1)
                r = qlab_err_set(err, -EINVAL,
                                 "%s:%d:%d: a second YAML document (one experiment per file)",
                                 file, line, col);
            break;
        case YAML_ALIAS_EVENT:
            r = qlab_err_set(err, -EINVAL, "%s:%d:%d: aliases (*%s) are not supported", file,
                             line, col, (const char *)ev.data.alias.anchor);
            break;
        case YAML_SCALAR_EVENT:
            if (top && top->is_map && top->want_key) {
                top->key = strndup((const char *)ev.data.scalar.value, ev.data.scalar.length);
                if (!top->key) {
                    r = -ENOMEM;
                    break;
                }
                top->key_line = line;
                top->key_col = col;
                top->want_key = 0;
            } else {
                int kl, kc;
                char *path = child_path(top, &kl, &kc);
                r = path ? add_node(m, path, QLAB_YNODE_SCALAR, &ev, kl, kc) : -ENOMEM;
                if (r < 0)
                    free(path);
            }
            break;
        case YAML_SEQUENCE_START_EVENT:
        case YAML_MAPPING_START_EVENT: {
            int is_map = ev.type == YAML_MAPPING_START_EVENT;
            if (top && top->is_map && top->want_key) {
                r = qlab_err_set(err, -EINVAL, "%s:%d:%d: a key must be a plain value", file,
                                 line, col);
                break;
            }
            if (depth == MAX_DEPTH) {
                r = qlab_err_set(err, -EINVAL, "%s:%d:%d: nested more than %d levels deep",
                                 file, line, col, MAX_DEPTH);
                break;
            }
            int kl, kc;
            char *path = child_path(top, &kl, &kc);
            r = path ? add_node(m, path, is_map ? QLAB_YNODE_MAPPING : QLAB_YNODE_SEQUENCE,
                                &ev, kl, kc)
                     : -ENOMEM;
            if (r < 0) {
                free(path);
                break;
            }
            stack[depth++] = (frame){ .path = path, .is_map = is_map, .want_key = 1 };
            break;
        }
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
            if (depth) {
                free(stack[depth - 1].key);
                depth--;
            }
            break;
        default:
            break;
        }
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&parser);
    while (depth)
        free(stack[--depth].key);
    if (r == -E2BIG)
        r = qlab_err_set(err, -E2BIG, "%s:1:1: more than %d YAML nodes", file, MAX_NODES);
    else if (r == -ENOMEM)
        r = qlab_err_set(err, -ENOMEM, "%s: out of memory", file);
    if (r < 0)
        qlab_ymap_free(m);
    return r;
}

void qlab_ymap_free(qlab_ymap *m)
{
    for (size_t i = 0; i < m->n; i++) {
        free(m->nodes[i].path);
        free(m->nodes[i].value);
    }
    free(m->nodes);
    memset(m, 0, sizeof *m);
}

const qlab_ynode *qlab_ymap_find(const qlab_ymap *m, const char *path)
{
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->nodes[i].path, path) == 0)
            return &m->nodes[i];
    return NULL;
}

const qlab_ynode *qlab_ymap_find_after(const qlab_ymap *m, const char *path, int line,
                                       int col)
{
    for (size_t i = 0; i < m->n; i++) {
        const qlab_ynode *n = &m->nodes[i];
        if (strcmp(n->path, path) == 0 &&
            (n->key_line > line || (n->key_line == line && n->key_col > col)))
            return n;
    }
    return NULL;
}

void qlab_ymap_locate(const qlab_ymap *m, const char *path, int use_key, int *line,
                      int *col)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    for (;;) {
        const qlab_ynode *n = qlab_ymap_find(m, buf);
        if (n) {
            *line = use_key ? n->key_line : n->line;
            *col = use_key ? n->key_col : n->col;
            return;
        }
        /* Parent: drop the last ".key" or "[i]". */
        char *dot = strrchr(buf, '.'), *br = strrchr(buf, '[');
        char *cut = dot > br ? dot : br;
        if (!cut) {
            if (!buf[0])
                break;
            buf[0] = '\0';
            continue;
        }
        *cut = '\0';
        use_key = 1;
    }
    *line = *col = 1;
}
