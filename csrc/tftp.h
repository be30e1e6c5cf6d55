/*
 * tftp.h - the TFTP codec's plain C layer (no Lua, csrc/tftp_packet.c),
 * shared by csrc/tftp.c and the fuzz harness fuzz/tftp_fuzz.c.  Internal.
 */
#ifndef LNET_TFTP_H
#define LNET_TFTP_H

#include <stddef.h>

/* Opcodes (RFC 1350, RFC 2347). */
#define LNET_TFTP_RRQ 1
#define LNET_TFTP_WRQ 2
#define LNET_TFTP_DATA 3
#define LNET_TFTP_ACK 4
#define LNET_TFTP_ERROR 5
#define LNET_TFTP_OACK 6

/* Error codes (RFC 1350, RFC 2347). */
#define LNET_TFTP_ERR_UNDEFINED 0 /* not defined, see the message */
#define LNET_TFTP_ERR_NOT_FOUND 1
#define LNET_TFTP_ERR_ACCESS 2
#define LNET_TFTP_ERR_DISK_FULL 3
#define LNET_TFTP_ERR_ILLEGAL 4
#define LNET_TFTP_ERR_UNKNOWN_TID 5
#define LNET_TFTP_ERR_EXISTS 6
#define LNET_TFTP_ERR_NO_USER 7
#define LNET_TFTP_ERR_OPTION 8 /* option negotiation refused */

/* Limits. */
#define LNET_TFTP_MAXREQ 512 /* RFC 2347: a request (and our OACK) fits in 512 */
#define LNET_TFTP_BLKSIZE 512
#define LNET_TFTP_BLKSIZE_MIN 8
#define LNET_TFTP_BLKSIZE_MAX 65464
#define LNET_TFTP_TIMEOUT_MIN 1 /* RFC 2349 */
#define LNET_TFTP_TIMEOUT_MAX 255
#define LNET_TFTP_WINDOWSIZE_MIN 1 /* RFC 7440 */
#define LNET_TFTP_WINDOWSIZE_MAX 65535
/* A name and a value need at least 4 bytes, so 512 bytes hold fewer. */
#define LNET_TFTP_MAXOPTS 128

typedef struct lnet_TftpOpt {
  const char *name; /* points into the packet, not NUL-terminated here */
  size_t namelen;
  const char *value;
  size_t valuelen;
} lnet_TftpOpt;

typedef struct lnet_TftpPacket {
  int opcode;
  unsigned block;       /* DATA, ACK */
  unsigned code;        /* ERROR */
  const char *filename; /* RRQ, WRQ */
  size_t filenamelen;
  const char *mode; /* RRQ, WRQ (as sent, not lowercased) */
  size_t modelen;
  const char *data; /* DATA payload, ERROR message */
  size_t datalen;
  int nopts; /* RRQ, WRQ, OACK */
  lnet_TftpOpt opts[LNET_TFTP_MAXOPTS];
} lnet_TftpPacket;

/* Parses packet p[0..n) strictly.  blksize bounds a DATA payload.  Returns
 * NULL and fills *out on success, or a static reason string.  Reads only
 * p[0..n); every pointer in *out points into p. */
const char *lnet_tftp_parse(const char *p, size_t n, size_t blksize,
                            lnet_TftpPacket *out);

/* netascii: encoding writes at most 2*n bytes to out and returns the count;
 * lnet_netascii_size returns that count without writing. */
size_t lnet_netascii_size(const char *in, size_t n);
size_t lnet_netascii_encode(const char *in, size_t n, char *out);

/* Decoding writes at most n+1 bytes to out and returns the count.  *pending
 * is 1 when the previous chunk ended in a CR not yet emitted; it is updated.
 * With final set, a pending CR at the end is emitted as is. */
size_t lnet_netascii_decode(const char *in, size_t n, int *pending, int final, char *out);

/* Names: lnet_tftp_opnames[opcode] ("RRQ" ...), lnet_tftp_errmsgs[code]
 * (RFC 1350's messages, lnet_tftp_nerrmsgs of them). */
extern const char *const lnet_tftp_opnames[];
extern const char *const lnet_tftp_errmsgs[];
extern const int lnet_tftp_nerrmsgs;
/* Case-insensitive equality of two byte strings (option names). */
int lnet_tftp_caseeq(const char *a, size_t alen, const char *b, size_t blen);

/* Big-endian 16-bit fields. */
static inline unsigned get16(const char *p) {
  const unsigned char *u = (const unsigned char *)p;
  return ((unsigned)u[0] << 8) | u[1];
}

static inline void put16(char *p, unsigned v) {
  p[0] = (char)((v >> 8) & 0xFF);
  p[1] = (char)(v & 0xFF);
}

static inline int lower(int c) {
  return (c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : c;
}

#endif
