/* tftp.c - placeholder until the tftp concept lands (being written now). */
#include "lnet.h"

void lnet_open_tftp(lua_State *L) {
  (void)L;
}
