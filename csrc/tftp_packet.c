/*
 * tftp_packet.c - the TFTP codec's plain C layer (no Lua): the strict and
 * total packet parser and streaming netascii translation (RFC 1350, 2347,
 * 2348, 2349, 7440), shared by tftp.c (the Lua functions) and the fuzz
 * harness fuzz/tftp_fuzz.c.  Declared in tftp.h.
 *
 * Malformed input (it comes from the network) gives a reason and never
 * reads past the packet.
 */
#include <stddef.h>
#include <string.h>

#include "tftp.h"

const char *const lnet_tftp_opnames[] = {
    [LNET_TFTP_RRQ] = "RRQ", [LNET_TFTP_WRQ] = "WRQ",     [LNET_TFTP_DATA] = "DATA",
    [LNET_TFTP_ACK] = "ACK", [LNET_TFTP_ERROR] = "ERROR", [LNET_TFTP_OACK] = "OACK",
};

const char *const lnet_tftp_errmsgs[] = {
    [LNET_TFTP_ERR_UNDEFINED] = "Not defined, see error message",
    [LNET_TFTP_ERR_NOT_FOUND] = "File not found",
    [LNET_TFTP_ERR_ACCESS] = "Access violation",
    [LNET_TFTP_ERR_DISK_FULL] = "Disk full or allocation exceeded",
    [LNET_TFTP_ERR_ILLEGAL] = "Illegal TFTP operation",
    [LNET_TFTP_ERR_UNKNOWN_TID] = "Unknown transfer ID",
    [LNET_TFTP_ERR_EXISTS] = "File already exists",
    [LNET_TFTP_ERR_NO_USER] = "No such user",
    [LNET_TFTP_ERR_OPTION] = "Option negotiation refused",
};
const int lnet_tftp_nerrmsgs =
    (int)(sizeof(lnet_tftp_errmsgs) / sizeof(lnet_tftp_errmsgs[0]));

int lnet_tftp_caseeq(const char *a, size_t alen, const char *b, size_t blen) {
  size_t i;
  if (alen != blen) return 0;
  for (i = 0; i < alen; i++)
    if (lower((unsigned char)a[i]) != lower((unsigned char)b[i])) return 0;
  return 1;
}

static int allnul(const char *p, size_t n) {
  size_t i;
  for (i = 0; i < n; i++)
    if (p[i] != '\0') return 0;
  return 1;
}

/* Options from p[pos..n): name NUL value NUL ...  Trailing NUL padding
 * after the last complete option is tolerated (as FreeBSD's tftpd does). */
static const char *parse_opts(const char *p, size_t pos, size_t n, lnet_TftpPacket *out) {
  out->nopts = 0;
  while (pos < n) {
    const char *name, *value, *z;
    size_t namelen, valuelen;
    int i;
    if (allnul(p + pos, n - pos)) break;
    name = p + pos;
    z = memchr(name, '\0', n - pos);
    if (z == NULL) return "unterminated option name";
    namelen = (size_t)(z - name);
    if (namelen == 0) return "empty option name";
    pos += namelen + 1;
    if (pos >= n) return "option without a value";
    value = p + pos;
    z = memchr(value, '\0', n - pos);
    if (z == NULL) return "unterminated option value";
    valuelen = (size_t)(z - value);
    pos += valuelen + 1;
    if (out->nopts >= LNET_TFTP_MAXOPTS) return "too many options";
    for (i = 0; i < out->nopts; i++)
      if (lnet_tftp_caseeq(out->opts[i].name, out->opts[i].namelen, name, namelen))
        return "duplicate option";
    out->opts[out->nopts].name = name;
    out->opts[out->nopts].namelen = namelen;
    out->opts[out->nopts].value = value;
    out->opts[out->nopts].valuelen = valuelen;
    out->nopts++;
  }
  return NULL;
}

const char *lnet_tftp_parse(const char *p, size_t n, size_t blksize,
                            lnet_TftpPacket *out) {
  const char *z;
  size_t pos;
  unsigned op;
  out->opcode = 0;
  out->block = out->code = 0;
  out->filename = out->mode = out->data = NULL;
  out->filenamelen = out->modelen = out->datalen = 0;
  out->nopts = 0;
  if (n < 4) return "packet too short";
  op = get16(p);
  switch (op) {
  case LNET_TFTP_RRQ:
  case LNET_TFTP_WRQ:
    out->opcode = (int)op;
    if (n > LNET_TFTP_MAXREQ) return "request longer than 512 bytes";
    z = memchr(p + 2, '\0', n - 2);
    if (z == NULL) return "unterminated filename";
    out->filename = p + 2;
    out->filenamelen = (size_t)(z - out->filename);
    if (out->filenamelen == 0) return "empty filename";
    pos = 2 + out->filenamelen + 1;
    if (pos >= n) return "missing mode";
    z = memchr(p + pos, '\0', n - pos);
    if (z == NULL) return "unterminated mode";
    out->mode = p + pos;
    out->modelen = (size_t)(z - out->mode);
    if (out->modelen == 0) return "empty mode";
    pos += out->modelen + 1;
    return parse_opts(p, pos, n, out);
  case LNET_TFTP_DATA:
    out->opcode = (int)op;
    out->block = get16(p + 2);
    if (n - 4 > blksize) return "DATA larger than the block size";
    out->data = p + 4;
    out->datalen = n - 4;
    return NULL;
  case LNET_TFTP_ACK:
    out->opcode = (int)op;
    if (n != 4) return "ACK is not 4 bytes";
    out->block = get16(p + 2);
    return NULL;
  case LNET_TFTP_ERROR:
    out->opcode = (int)op;
    out->code = get16(p + 2);
    if (n == 4) return "unterminated ERROR message";
    z = memchr(p + 4, '\0', n - 4);
    if (z == NULL) return "unterminated ERROR message";
    out->data = p + 4;
    out->datalen = (size_t)(z - out->data);
    return NULL; /* bytes after the terminator are ignored */
  case LNET_TFTP_OACK:
    out->opcode = (int)op;
    if (n > LNET_TFTP_MAXREQ) return "OACK longer than 512 bytes";
    z = parse_opts(p, 2, n, out);
    if (z != NULL) return z;
    if (out->nopts == 0) return "OACK without options";
    return NULL;
  default:
    return "unknown opcode";
  }
}

size_t lnet_netascii_size(const char *in, size_t n) {
  size_t i, k = n;
  for (i = 0; i < n; i++)
    if (in[i] == '\r' || in[i] == '\n') k++;
  return k;
}

size_t lnet_netascii_encode(const char *in, size_t n, char *out) {
  size_t i, o = 0;
  for (i = 0; i < n; i++) {
    char c = in[i];
    if (c == '\n') {
      out[o++] = '\r';
      out[o++] = '\n';
    } else if (c == '\r') {
      out[o++] = '\r';
      out[o++] = '\0';
    } else {
      out[o++] = c;
    }
  }
  return o;
}

size_t lnet_netascii_decode(const char *in, size_t n, int *pending, int final,
                            char *out) {
  size_t i = 0, o = 0;
  int pend = *pending;
  if (pend && n > 0) {
    /* the CR that ended the previous chunk */
    if (in[0] == '\n') {
      out[o++] = '\n';
      i = 1;
    } else if (in[0] == '\0') {
      out[o++] = '\r';
      i = 1;
    } else {
      out[o++] = '\r';
    }
    pend = 0;
  }
  while (i < n) {
    const char *cr = memchr(in + i, '\r', n - i);
    size_t run = cr ? (size_t)(cr - (in + i)) : n - i;
    memcpy(out + o, in + i, run);
    o += run;
    i += run;
    if (i >= n) break;
    /* in[i] is a CR */
    if (i + 1 == n) {
      pend = 1;
      i++;
    } else if (in[i + 1] == '\n') {
      out[o++] = '\n';
      i += 2;
    } else if (in[i + 1] == '\0') {
      out[o++] = '\r';
      i += 2;
    } else {
      out[o++] = '\r'; /* CR followed by anything else: left as is */
      i++;
    }
  }
  if (pend && final) {
    out[o++] = '\r';
    pend = 0;
  }
  *pending = pend;
  return o;
}
