/*
 * yamltree.h - strict YAML reading for profiles and policies (internal).
 *
 * libyaml's event stream becomes a small bounded tree: anchors and aliases are
 * refused (no alias bombs), duplicate mapping keys are refused, depth and node
 * count are capped, and every node keeps its line and column for messages.
 */
#ifndef FWREL_YAMLTREE_H
#define FWREL_YAMLTREE_H

#include <stddef.h>
#include <stdint.h>

enum { YT_SCALAR, YT_MAP, YT_SEQ };

#define YT_MAX_DEPTH 16
#define YT_MAX_NODES 4096

typedef struct yt_node {
    int kind;
    int line, col;          /* 1-based */
    char *value;            /* YT_SCALAR */
    int plain;              /* scalar was unquoted */
    struct yt_node **items; /* YT_SEQ items, or YT_MAP keys and values alternating */
    size_t count;           /* items (for a map: 2 per entry) */
} yt_node;

/** Parse YAML text into a tree (one document). @return 0 or FWREL_EFORMAT "line:col: reason". */
int yt_parse(yt_node **out, const uint8_t *text, size_t len);

/** Free a tree. NULL is fine. */
void yt_free(yt_node *node);

/** The value for key in a map, or NULL. */
const yt_node *yt_get(const yt_node *map, const char *key);

/** Check that every key of map is in the NULL-terminated list. @return 0 or FWREL_EFORMAT. */
int yt_check_keys(const yt_node *map, const char *const *allowed);

/** Expect a kind. @return 0 or FWREL_EFORMAT "line:col: <what> must be a ...". */
int yt_expect(const yt_node *node, int kind, const char *what);

/** A scalar as an unsigned integer (decimal or 0x hex) no larger than max. */
int yt_u64(uint64_t *out, const yt_node *node, uint64_t max, const char *what);

/** A scalar as a boolean (true/false). */
int yt_bool(int *out, const yt_node *node, const char *what);

/** A scalar string; at most max bytes. */
int yt_str(const char **out, const yt_node *node, size_t max, const char *what);

/** A "major.minor" revision (minor < 100) as major*100+minor. */
int yt_rev(uint16_t *out, const yt_node *node, const char *what);

#endif
