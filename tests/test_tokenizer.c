/* test_tokenizer.c -- the BPE tokenizer against the reference encodings of
 * ../shared/models/PROVENANCE.md, against a naive re-implementation of
 * llama2.c's O(n^2) merge loop, and decode(encode(x)) == x. */
#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "test.h"
#include "format/tokenizer.h"

/* llama2.c's encode() on our vocabulary, written independently of
 * tokenizer.c's: the text cut into UTF-8 characters (a lead byte and at most
 * three continuation bytes) up front, each looked up whole or spelt as byte
 * tokens (<0x00> is id 3), then llama2.c's merge loop -- the reference
 * tokenizer.c's encode is checked against */
static int naive_encode(const Tokenizer *t, const char *text, int *tokens)
{
    int n = 0;
    tokens[n++] = 1;
    if (text[0]) tokens[n++] = tok_lookup(t, " ", 1);
    for (size_t at = 0, len; text[at]; at += len) {
        for (len = 1; len < 4 && ((unsigned char)text[at + len] & 0xC0) == 0x80; len++) {}
        int id = tok_lookup(t, text + at, len);
        if (id == -1)
            for (size_t b = 0; b < len; b++) tokens[n++] = 3 + (unsigned char)text[at + b];
        else
            tokens[n++] = id;
    }
    char *buf = malloc(t->max_token_length * 2 + 3);
    for (;;) {
        float best = -1e10f;
        int best_id = -1, best_idx = -1;
        for (int i = 0; i < n - 1; i++) {
            sprintf(buf, "%s%s", t->vocab[tokens[i]], t->vocab[tokens[i + 1]]);
            int id = tok_lookup(t, buf, strlen(buf));
            if (id != -1 && t->scores[id] > best) { best = t->scores[id]; best_id = id; best_idx = i; }
        }
        if (best_idx == -1) break;
        tokens[best_idx] = best_id;
        for (int i = best_idx + 1; i < n - 1; i++) tokens[i] = tokens[i + 1];
        n--;
    }
    free(buf);
    return n;
}

static void check_ids(const Tokenizer *t, const char *text, const int *want, int nwant)
{
    int *ids;
    size_t nz;
    tok_encode(t, text, 1, 0, &ids, &nz);
    int n = (int)nz;
    int same = n == nwant;
    for (int i = 0; same && i < n; i++) same = ids[i] == want[i];
    CHECK(same, "encode(\"%s\") gives %d ids, first %d", text, n, n ? ids[n > 1] : -1);
    free(ids);
}

/* the first len bytes of text as a string (*s, malloc'd) and its ids with
 * BOS (malloc'd, *n of them) */
static int *encode_prefix(const Tokenizer *t, const char *text, size_t len, char **s, int *n)
{
    *s = malloc(len + 1);
    memcpy(*s, text, len);
    (*s)[len] = 0;
    int *ids;
    size_t nz;
    tok_encode(t, *s, 1, 0, &ids, &nz);
    *n = (int)nz;
    return ids;
}

static void check_naive(const Tokenizer *t, const char *text, size_t len, const char *what)
{
    char *s;
    int n, *ids = encode_prefix(t, text, len, &s, &n);
    int *ref = malloc((len + 3) * sizeof(int));
    int nr = naive_encode(t, s, ref);
    int same = n == nr;
    for (int i = 0; same && i < n; i++) same = ids[i] == ref[i];
    CHECK(same, "%s: heap encoder (%d ids) differs from llama2.c's loop (%d ids)", what, n, nr);
    free(ref); free(ids); free(s);
}

static void check_roundtrip(const Tokenizer *t, const char *text, size_t len, const char *what)
{
    char *s;
    int n, *ids = encode_prefix(t, text, len, &s, &n);
    char *out = malloc(len * 4 + 16);
    size_t o = 0;
    for (int i = 1; i < n; i++) {
        const char *p = tok_decode(t, ids[i - 1], ids[i]);
        size_t pl = strlen(p);
        if (pl == 0 && t->byte_base >= 0 && ids[i] == t->byte_base) { out[o++] = 0; continue; }
        memcpy(out + o, p, pl);
        o += pl;
    }
    out[o] = 0;
    CHECK(o == len && memcmp(out, s, len) == 0, "%s: decode(encode(x)) != x (%zu vs %zu bytes)", what, o, len);
    free(out); free(ids); free(s);
}

int main(void)
{
    REQUIRE_SHARED(tok512, "models/tok512.bin");
    REQUIRE_SHARED(tok32k, "models/tokenizer.bin");
    REQUIRE_SHARED(stories, "data/tinystories_train_head_sample.txt");
    REQUIRE_SHARED(wiki, "data/wiki.test.raw");
    char err[OB_ERRLEN];
    Tokenizer t, big;
    CHECK(tok_load(&t, tok512, 512, err) == 0, "%s", err);
    CHECK(tok_load(&big, tok32k, 32000, err) == 0, "%s", err);
    CHECK(t.byte_base == 3 && big.byte_base == 3, "byte fallback at id 3");

    check_ids(&t, "Once upon a time", (int[]){1, 403, 407, 261, 378}, 5);
    check_ids(&t, "", (int[]){1}, 1);
    check_ids(&big, "Once upon a time", (int[]){1, 9038, 2501, 263, 931}, 5);
    check_ids(&big, " = Robert Boulter = ", (int[]){1, 29871, 353, 4755, 350, 5059, 357, 353, 29871}, 9);
    CHECK(strcmp(big.vocab[9038], " Once") == 0, "token 9038 is ' Once'");
    CHECK(big.scores[9038] == -8779.0f, "score of 9038");

    char *st, *wk;
    size_t sl, wl;
    CHECK(ob_read_file(stories, &st, &sl, err) == 0, "%s", err);
    CHECK(ob_read_file(wiki, &wk, &wl, err) == 0, "%s", err);
    /* the fast encoder equals llama2.c's loop on real text, both vocabularies */
    check_naive(&t, st, 3000, "tok512 stories");
    check_naive(&t, wk, 3000, "tok512 wiki");
    check_naive(&big, st, 3000, "tok32k stories");
    check_naive(&big, wk + 5000, 3000, "tok32k wiki");
    const char *odd = "caf\xc3\xa9 \xe2\x82\xac 10 \xf0\x9f\x98\x80 \t\n tab\x01\x7f end";
    check_naive(&t, odd, strlen(odd), "tok512 utf8+bytes");
    check_naive(&big, odd, strlen(odd), "tok32k utf8+bytes");
    /* round trips */
    check_roundtrip(&t, st, sl, "tok512 whole stories sample");
    check_roundtrip(&t, wk, 200000, "tok512 wiki 200k");
    check_roundtrip(&big, st, 50000, "tok32k stories 50k");
    check_roundtrip(&t, odd, strlen(odd), "tok512 utf8+bytes");
    /* piece filter */
    CHECK(!tok_piece_printable(""), "empty");
    CHECK(!tok_piece_printable("\x01"), "control byte");
    CHECK(tok_piece_printable("\n"), "newline");
    CHECK(tok_piece_printable("ab"), "text");
    free(st); free(wk);
    tok_free(&t);
    tok_free(&big);
    /* counts are 64-bit; a tokenizer that holds nothing is an error */
    {
        Tokenizer z;
        memset(&z, 0, sizeof z);
        int *zi = (int *)&z;
        size_t zn = 7;
        CHECK(tok_encode(&z, "abc", 1, 0, &zi, &zn) == -1 && zi == NULL && zn == 0, "empty tokenizer: -1, nothing out");
        CHECK(tok_encode(&z, NULL, 1, 0, &zi, &zn) == -1 && zi == NULL, "NULL text: -1");
    }
    return test_done("test_tokenizer");
}
