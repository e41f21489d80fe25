/* yamltree.c - strict, bounded YAML trees (yamltree.h). */
#include "yamltree.h"

#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "fwrel/error.h"
#include "util.h"

struct build {
    yaml_parser_t parser;
    size_t nodes;
};

void yt_free(yt_node *n)
{
    if (n == NULL)
        return;
    for (size_t i = 0; i < n->count; i++)
        yt_free(n->items[i]);
    free(n->items);
    free(n->value);
    free(n);
}

static int perr(const yaml_mark_t *m, const char *what)
{
    return fwrel_error_set_at(FWREL_EFORMAT, (unsigned)m->line + 1, (unsigned)m->column + 1, "%s",
                              what);
}

static int add_item(yt_node *parent, yt_node *child)
{
    yt_node **items = realloc(parent->items, (parent->count + 1) * sizeof(*items));
    if (items == NULL)
        return fwrel_error_set(FWREL_EIO, "out of memory");
    parent->items = items;
    parent->items[parent->count++] = child;
    return 0;
}

/* Build the node that starts with ev (already taken); consumes through its end event. */
static int build_node(struct build *b, yaml_event_t *ev, yt_node **out, int depth)
{
    yt_node *n = NULL;
    int error;
    *out = NULL;
    if (ev->type == YAML_ALIAS_EVENT)
        return perr(&ev->start_mark, "aliases are not allowed");
    if ((ev->type == YAML_SCALAR_EVENT && ev->data.scalar.anchor) ||
        (ev->type == YAML_MAPPING_START_EVENT && ev->data.mapping_start.anchor) ||
        (ev->type == YAML_SEQUENCE_START_EVENT && ev->data.sequence_start.anchor))
        return perr(&ev->start_mark, "anchors are not allowed");
    if (depth > YT_MAX_DEPTH)
        return perr(&ev->start_mark, "nested too deeply");
    if (++b->nodes > YT_MAX_NODES)
        return perr(&ev->start_mark, "too many nodes");
    if ((n = calloc(1, sizeof(*n))) == NULL)
        return fwrel_error_set(FWREL_EIO, "out of memory");
    n->line = (int)ev->start_mark.line + 1;
    n->col = (int)ev->start_mark.column + 1;
    if (ev->type == YAML_SCALAR_EVENT) {
        n->kind = YT_SCALAR;
        n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
        if ((n->value = malloc(ev->data.scalar.length + 1)) == NULL) {
            free(n);
            return fwrel_error_set(FWREL_EIO, "out of memory");
        }
        memcpy(n->value, ev->data.scalar.value, ev->data.scalar.length);
        n->value[ev->data.scalar.length] = '\0';
        if (strlen(n->value) != ev->data.scalar.length) {
            yt_free(n);
            return perr(&ev->start_mark, "NUL byte in a value");
        }
        *out = n;
        return 0;
    }
    if (ev->type != YAML_MAPPING_START_EVENT && ev->type != YAML_SEQUENCE_START_EVENT) {
        free(n);
        return perr(&ev->start_mark, "unexpected YAML event");
    }
    n->kind = ev->type == YAML_MAPPING_START_EVENT ? YT_MAP : YT_SEQ;
    int end = n->kind == YT_MAP ? YAML_MAPPING_END_EVENT : YAML_SEQUENCE_END_EVENT;
    for (;;) {
        yaml_event_t e;
        yt_node *child = NULL;
        if (!yaml_parser_parse(&b->parser, &e)) {
            error = perr(&b->parser.problem_mark,
                         b->parser.problem ? b->parser.problem : "syntax error");
            goto fail;
        }
        if ((int)e.type == end) {
            yaml_event_delete(&e);
            break;
        }
        error = build_node(b, &e, &child, depth + 1);
        if (error == 0 && n->kind == YT_MAP && n->count % 2 == 0) {
            if (child->kind != YT_SCALAR) {
                error = perr(&e.start_mark, "a key must be a plain string");
            } else {
                for (size_t i = 0; i < n->count; i += 2)
                    if (strcmp(n->items[i]->value, child->value) == 0) {
                        error = fwrel_error_set_at(FWREL_EFORMAT, (unsigned)child->line,
                                                   (unsigned)child->col, "duplicate key '%s'",
                                                   child->value);
                        break;
                    }
            }
        }
        yaml_event_delete(&e);
        if (error == 0)
            error = add_item(n, child);
        if (error) {
            yt_free(child);
            goto fail;
        }
    }
    *out = n;
    return 0;
fail:
    yt_free(n);
    return error;
}

int yt_parse(yt_node **out, const uint8_t *text, size_t len)
{
    struct build b = {0};
    yaml_event_t ev;
    yt_node *root = NULL;
    int error = 0, started = 0;
    *out = NULL;
    if (!yaml_parser_initialize(&b.parser))
        return fwrel_error_set(FWREL_EIO, "out of memory");
    yaml_parser_set_input_string(&b.parser, text, len);
    for (;;) {
        if (!yaml_parser_parse(&b.parser, &ev)) {
            error =
                perr(&b.parser.problem_mark, b.parser.problem ? b.parser.problem : "syntax error");
            break;
        }
        yaml_event_type_t t = ev.type;
        if (t == YAML_STREAM_END_EVENT) {
            yaml_event_delete(&ev);
            break;
        }
        if (t == YAML_DOCUMENT_START_EVENT) {
            if (started++) {
                error = perr(&ev.start_mark, "only one YAML document is allowed");
                yaml_event_delete(&ev);
                break;
            }
        } else if (t == YAML_MAPPING_START_EVENT || t == YAML_SEQUENCE_START_EVENT ||
                   t == YAML_SCALAR_EVENT || t == YAML_ALIAS_EVENT) {
            error = build_node(&b, &ev, &root, 0);
            if (error) {
                yaml_event_delete(&ev);
                break;
            }
        }
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&b.parser);
    if (error == 0 && root == NULL)
        error = fwrel_error_set(FWREL_EFORMAT, "1:1: empty document");
    if (error) {
        yt_free(root);
        return error;
    }
    *out = root;
    return 0;
}

const yt_node *yt_get(const yt_node *map, const char *key)
{
    if (map == NULL || map->kind != YT_MAP)
        return NULL;
    for (size_t i = 0; i + 1 < map->count; i += 2)
        if (strcmp(map->items[i]->value, key) == 0)
            return map->items[i + 1];
    return NULL;
}

int yt_check_keys(const yt_node *map, const char *const *allowed)
{
    for (size_t i = 0; i + 1 < map->count; i += 2) {
        const char *k = map->items[i]->value;
        int found = 0;
        for (size_t j = 0; allowed[j] && !found; j++)
            found = strcmp(allowed[j], k) == 0;
        if (!found)
            return fwrel_error_set_at(FWREL_EFORMAT, (unsigned)map->items[i]->line,
                                      (unsigned)map->items[i]->col, "unknown key '%s'", k);
    }
    return 0;
}

int yt_expect(const yt_node *n, int kind, const char *what)
{
    static const char *names[] = {"a scalar", "a mapping", "a list"};
    if (n->kind != kind)
        return fwrel_error_set_at(FWREL_EFORMAT, (unsigned)n->line, (unsigned)n->col,
                                  "%s must be %s", what, names[kind]);
    return 0;
}

int yt_u64(uint64_t *out, const yt_node *n, uint64_t max, const char *what)
{
    int error = yt_expect(n, YT_SCALAR, what);
    if (error)
        return error;
    if (!n->plain || fwrel_parse_u64(out, n->value, max) != 0)
        return fwrel_error_set_at(FWREL_EFORMAT, (unsigned)n->line, (unsigned)n->col,
                                  "%s must be a whole number from 0 to %llu, not '%s'", what,
                                  (unsigned long long)max, n->value);
    return 0;
}

int yt_bool(int *out, const yt_node *n, const char *what)
{
    int error = yt_expect(n, YT_SCALAR, what);
    if (error)
        return error;
    if (n->plain && strcmp(n->value, "true") == 0)
        *out = 1;
    else if (n->plain && strcmp(n->value, "false") == 0)
        *out = 0;
    else
        return fwrel_error_set_at(FWREL_EFORMAT, (unsigned)n->line, (unsigned)n->col,
                                  "%s must be true or false", what);
    return 0;
}

int yt_str(const char **out, const yt_node *n, size_t max, const char *what)
{
    int error = yt_expect(n, YT_SCALAR, what);
    if (error)
        return error;
    if (strlen(n->value) > max)
        return fwrel_error_set_at(FWREL_EFORMAT, (unsigned)n->line, (unsigned)n->col,
                                  "%s is longer than %zu bytes", what, max);
    *out = n->value;
    return 0;
}

int yt_rev(uint16_t *out, const yt_node *n, const char *what)
{
    int error = yt_expect(n, YT_SCALAR, what);
    uint64_t major, minor;
    char buf[16];
    if (error)
        return error;
    const char *dot = strchr(n->value, '.');
    size_t ml = dot ? (size_t)(dot - n->value) : 0;
    if (dot == NULL || ml == 0 || ml >= sizeof(buf))
        goto bad;
    memcpy(buf, n->value, ml);
    buf[ml] = '\0';
    if (fwrel_parse_u64(&major, buf, 655) != 0 || fwrel_parse_u64(&minor, dot + 1, 99) != 0 ||
        major * 100 + minor > 65535)
        goto bad;
    *out = (uint16_t)(major * 100 + minor);
    return 0;
bad:
    return fwrel_error_set_at(FWREL_EFORMAT, (unsigned)n->line, (unsigned)n->col,
                              "%s must be a revision like \"1.3\", not '%s'", what, n->value);
}
